"""The stock flow's own documents validate against the schema and stay cheap."""

from __future__ import annotations

import pytest
from graphql import parse

from connectors.shopify.graphql_schema import admin_schema, validate_document
from connectors.shopify.sim.cost import operation_cost
from connectors.shopify.stock_documents import STOCK_DOCUMENTS


@pytest.mark.parametrize("name", sorted(STOCK_DOCUMENTS))
def test_document_validates_and_costs_little(name: str) -> None:
    text = STOCK_DOCUMENTS[name]
    assert validate_document(text) == []
    requested = operation_cost(admin_schema(), parse(text).definitions[0], {}, {})  # type: ignore[arg-type]
    assert requested <= 100, f"{name} requests {requested} points"
