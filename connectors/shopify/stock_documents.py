"""The slim GraphQL documents of the stock flow, sized for Shopify's cost model.

The stock flow asks the same two questions many times an hour, so each asks for exactly what
it uses: a generic order query with wide connections costs about 800 requested points, more
than a Standard bucket restores in 8 seconds; these cost a few points each.
"""

from __future__ import annotations

ORDER_ROUTING = """
query OrderRouting($id: ID!) {
  order(id: $id) {
    id
    fulfillmentOrders(first: 5) {
      nodes {
        assignedLocation { location { id } }
        deliveryMethod { methodType }
        lineItems(first: 10) { nodes { sku remainingQuantity } }
      }
    }
  }
}
"""

LEVEL_AVAILABLE = """
query LevelAvailable($item: ID!, $location: ID!) {
  inventoryItem(id: $item) {
    inventoryLevel(locationId: $location) {
      quantities(names: ["available"]) { name quantity }
    }
  }
}
"""

STOCK_DOCUMENTS: dict[str, str] = {
    "ORDER_ROUTING": ORDER_ROUTING,
    "LEVEL_AVAILABLE": LEVEL_AVAILABLE,
}
