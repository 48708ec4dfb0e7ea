"""Contract: every document tillsync sends validates against the Admin schema + overlay, and
the simulator rejects invalid documents the way Shopify does."""

from __future__ import annotations

import pytest
from graphql import GraphQLInputObjectType

from tillsync.connectors.shopify.documents import ALL_DOCUMENTS
from tillsync_sim.shopify.graphql_schema import admin_schema, prepare_document, validate_document

from .conftest import GQL


@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_every_document_validates(name: str) -> None:
    assert validate_document(ALL_DOCUMENTS[name]) == []


def test_overlay_adds_2026_fields_and_directive() -> None:
    schema = admin_schema()
    qty = schema.get_type("InventoryQuantityInput")
    assert isinstance(qty, GraphQLInputObjectType)
    assert "changeFromQuantity" in qty.fields
    assert str(qty.fields["changeFromQuantity"].type) == "Int"
    directive = schema.get_directive("idempotent")
    assert directive is not None
    assert str(directive.args["key"].type) == "String!"
    codes = schema.get_type("InventorySetQuantitiesUserErrorCode")
    assert "CHANGE_FROM_QUANTITY_STALE" in codes.values  # type: ignore[union-attr]


def test_validation_is_cached_by_text() -> None:
    doc = ALL_DOCUMENTS["INVENTORY_SET_QUANTITIES"]
    validate_document(doc)
    hits = prepare_document.cache_info().hits
    validate_document(doc)
    assert prepare_document.cache_info().hits == hits + 1


def test_unknown_field_is_a_shopify_shaped_error() -> None:
    errors = validate_document("{ shop { name notAField } }")
    assert len(errors) == 1
    assert errors[0]["extensions"]["code"] == "undefinedField"
    assert errors[0]["locations"] == [{"line": 1, "column": 15}]
    assert "notAField" in errors[0]["message"]


def test_idempotent_on_unknown_argument_rejected() -> None:
    errors = validate_document('mutation { tagsAdd(id: "x", tags: [], nope: 1) { node { id } } }')
    assert errors and errors[0]["extensions"]["code"] == "argumentNotAccepted"


async def test_sim_rejects_invalid_document(gql: GQL) -> None:
    answer = await gql("query { shop { id bogusField } }")
    assert "data" not in answer
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "undefinedField"
    assert error["locations"][0]["line"] == 1
    assert "bogusField" in error["message"]


async def test_sim_rejects_syntax_error(gql: GQL) -> None:
    answer = await gql("query { shop { id ")
    assert answer["errors"][0]["extensions"]["code"] == "parseError"


async def test_sim_rejects_bad_variables(gql: GQL) -> None:
    answer = await gql(
        ALL_DOCUMENTS["INVENTORY_ITEM_LEVELS"],
        {"id": "gid://shopify/InventoryItem/1", "first": "ten", "names": []},
    )
    assert answer["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE"
    assert "data" not in answer or answer["data"] is None


async def test_wrong_token_is_401(gql: GQL) -> None:
    r = await gql.raw("{ shop { id } }", token="wrong")
    assert r.status_code == 401
    assert r.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }
