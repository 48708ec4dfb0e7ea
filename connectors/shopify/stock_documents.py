"""The slim GraphQL documents of the stock flow, sized for Shopify's cost model.

The stock flow asks the same few questions many times an hour, so each asks for exactly what
it uses: a generic order query with wide connections costs about 800 requested points, more
than a Standard bucket restores in 8 seconds. ``ORDER_HOLDS`` asks for one small page of every
connection an order's held units come from (enough for nearly every order, and the actual cost
charged is what came back); the others page on from a cursor only when a page was full.
Shopify turns a query away (THROTTLED) while its *requested* cost exceeds what the bucket
holds, and the stock writes keep the bucket low at peaks: so the first read lists the
fulfilments by id and status only, and a fulfilment's lines are read (``FULFILLMENT_LINES``)
only when the caller does not know them yet. A fulfilment's lines never change once it is
made (it can only be cancelled), and its webhook carries them: on the Standard plan the lines
read again at every read of a fulfilled order were a sixth of the points the demo spent.
"""

from __future__ import annotations

# pages of the first reads: a typical order has one or two fulfilment orders of a few lines,
# and a few fulfilments
HOLDS_FULFILLMENT_ORDERS = 2
HOLDS_LINES = 5
HOLDS_FULFILLMENTS = 5
FIRST_FULFILLMENT_LINES = 5
# pages of the follow-up reads, when the first page was full
PAGE_FULFILLMENT_ORDERS = 6
PAGE_LINES = 20
# `Order.fulfillments` is a plain list (no cursor): a full list is read again this wide, and
# again at the widest Shopify allows, with only what tells fulfilments apart
WIDE_FULFILLMENTS = (50, 250)

_FO_FIELDS = """
        id
        status
        deliveryMethod { methodType }
        assignedLocation { location { id } }"""

ORDER_HOLDS = f"""
query OrderHolds($id: ID!) {{
  order(id: $id) {{
    fulfillmentOrders(first: {HOLDS_FULFILLMENT_ORDERS}) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{{_FO_FIELDS}
        lineItems(first: {HOLDS_LINES}) {{
          pageInfo {{ hasNextPage endCursor }}
          nodes {{ id sku remainingQuantity }}
        }}
      }}
    }}
    fulfillments(first: {HOLDS_FULFILLMENTS}) {{ id status location {{ id }} }}
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

FULFILLMENT_LINES = """
query FulfillmentLines($id: ID!, $first: Int!, $after: String) {
  fulfillment(id: $id) {
    fulfillmentLineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { quantity lineItem { sku } }
    }
  }
}
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
    "ORDER_FULFILLMENT_ORDERS": ORDER_FULFILLMENT_ORDERS,
    "FULFILLMENT_ORDER_LINES": FULFILLMENT_ORDER_LINES,
    "ORDER_FULFILLMENTS": ORDER_FULFILLMENTS,
    "FULFILLMENT_LINES": FULFILLMENT_LINES,
    "FULFILLMENT_ORDER_ORDER": FULFILLMENT_ORDER_ORDER,
    "LEVEL_AVAILABLE": LEVEL_AVAILABLE,
}
