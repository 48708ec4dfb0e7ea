"""The stock flow's own documents validate against the schema and stay cheap."""

from __future__ import annotations

import pytest
from graphql import parse

from tillsync.connectors.shopify.stock_documents import STOCK_DOCUMENTS
from tillsync_sim.shopify.cost import operation_cost
from tillsync_sim.shopify.graphql_schema import admin_schema, validate_document


@pytest.mark.parametrize("name", sorted(STOCK_DOCUMENTS))
def test_document_validates_and_costs_little(name: str) -> None:
    text = STOCK_DOCUMENTS[name]
    assert validate_document(text) == []
    requested = operation_cost(admin_schema(), parse(text).definitions[0], {}, {})  # type: ignore[arg-type]
    assert requested <= 100, f"{name} requests {requested} points"
