"""The slim GraphQL documents of the stock flow, sized for Shopify's cost model.

The stock flow asks the same few questions many times an hour, so each asks for exactly what
it uses: a generic order query with wide connections costs about 800 requested points, more
than a Standard bucket restores in 8 seconds. ``ORDER_HOLDS`` asks for one small page of every
connection an order's held units come from (enough for nearly every order, and the actual cost
charged is what came back); the others page on from a cursor only when a page was full.
Shopify turns a query away (THROTTLED) while its *requested* cost exceeds what the bucket
holds, and the stock writes keep the bucket low at peaks: so the first read asks only for the
fulfilment orders, and the fulfilments (``ORDER_FULFILLMENTS_LINES``) are read only for an
order that has some, which most reads (of orders just placed) do not.
"""

from __future__ import annotations

# pages of the first reads: a typical order has one or two fulfilment orders of a few lines
HOLDS_FULFILLMENT_ORDERS = 2
HOLDS_LINES = 5
HOLDS_FULFILLMENTS = 2
HOLDS_FULFILLMENT_LINES = 4
# pages of the follow-up reads, when the first page was full
PAGE_FULFILLMENT_ORDERS = 6
PAGE_LINES = 20
# `Order.fulfillments` is a plain list (no cursor): a full list is read again this wide, and
# again at the widest Shopify allows, with only what tells fulfilments apart
WIDE_FULFILLMENTS = (50, 250)

_FO_FIELDS = """
        id
        status
        assignedLocation { location { id } }"""

ORDER_HOLDS = f"""
query OrderHolds($id: ID!) {{
  order(id: $id) {{
    displayFulfillmentStatus
    fulfillmentOrders(first: {HOLDS_FULFILLMENT_ORDERS}) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{{_FO_FIELDS}
        lineItems(first: {HOLDS_LINES}) {{
          pageInfo {{ hasNextPage endCursor }}
          nodes {{ id sku remainingQuantity }}
        }}
      }}
    }}
  }}
}}
"""

ORDER_FULFILLMENTS_LINES = f"""
query OrderFulfillmentsLines($id: ID!) {{
  order(id: $id) {{
    fulfillments(first: {HOLDS_FULFILLMENTS}) {{
      id
      status
      location {{ id }}
      fulfillmentLineItems(first: {HOLDS_FULFILLMENT_LINES}) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{ quantity lineItem {{ sku }} }}
      }}
    }}
  }}
}}
"""

ORDER_FULFILLMENT_ORDERS = f"""
query OrderFulfillmentOrders($id: ID!, $after: String) {{
  order(id: $id) {{
    fulfillmentOrders(first: {PAGE_FULFILLMENT_ORDERS}, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{{_FO_FIELDS}
        lineItems(first: 1) {{
          pageInfo {{ hasNextPage endCursor }}
          nodes {{ id sku remainingQuantity }}
        }}
      }}
    }}
  }}
}}
"""

FULFILLMENT_ORDER_LINES = f"""
query FulfillmentOrderLines($id: ID!, $after: String) {{
  fulfillmentOrder(id: $id) {{
    lineItems(first: {PAGE_LINES}, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ id sku remainingQuantity }}
    }}
  }}
}}
"""

ORDER_FULFILLMENTS = """
query OrderFulfillments($id: ID!, $first: Int!) {
  order(id: $id) {
    fulfillments(first: $first) { id status location { id } }
  }
}
"""

FULFILLMENT_LINES = f"""
query FulfillmentLines($id: ID!, $after: String) {{
  fulfillment(id: $id) {{
    fulfillmentLineItems(first: {PAGE_LINES}, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ quantity lineItem {{ sku }} }}
    }}
  }}
}}
"""

FULFILLMENT_ORDER_ORDER = """
query FulfillmentOrderOrder($id: ID!) {
  fulfillmentOrder(id: $id) { orderId }
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
    "ORDER_HOLDS": ORDER_HOLDS,
    "ORDER_FULFILLMENTS_LINES": ORDER_FULFILLMENTS_LINES,
    "ORDER_FULFILLMENT_ORDERS": ORDER_FULFILLMENT_ORDERS,
    "FULFILLMENT_ORDER_LINES": FULFILLMENT_ORDER_LINES,
    "ORDER_FULFILLMENTS": ORDER_FULFILLMENTS,
    "FULFILLMENT_LINES": FULFILLMENT_LINES,
    "FULFILLMENT_ORDER_ORDER": FULFILLMENT_ORDER_ORDER,
    "LEVEL_AVAILABLE": LEVEL_AVAILABLE,
}
