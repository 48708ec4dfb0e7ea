"""The GraphQL documents of a store return reaching Shopify, in one place beside
``documents.py`` (which lists them in ``ALL_DOCUMENTS`` so the contract tests validate them).

The 2025-01 chain validated against the schema: ``returnCreate`` (an OPEN return and its
reverse fulfilment order), ``reverseFulfillmentOrderDispose`` (restocked at the store's
location, or not), ``returnRefund`` (the lines, and money only when the till did not pay the
customer back), ``returnClose``. From 2025-07 Shopify folds the last three into
``returnProcess``; only ``connectors/shopify/returns.py`` knows the chain, so moving is one
change there.
"""

from __future__ import annotations

# a return as the flow reads it: its lines, and what its reverse fulfilment order disposed
RETURN_FIELDS = """
fragment ReturnFields on Return {
  id status
  returnLineItems(first: 5) {
    pageInfo { hasNextPage }
    nodes {
      id quantity returnReason returnReasonNote
      ... on ReturnLineItem {
        refundableQuantity refundedQuantity
        fulfillmentLineItem { id lineItem { id sku } }
      }
    }
  }
  reverseFulfillmentOrders(first: 1) {
    nodes {
      id
      lineItems(first: 5) {
        pageInfo { hasNextPage }
        nodes {
          id totalQuantity
          fulfillmentLineItem { id }
          dispositions { type quantity location { id } }
        }
      }
    }
  }
}
"""

# requested cost 196 (a tenth of the Standard plan's bucket is 100 a second): five returns
# of five lines each are read at once, and a read that finds more says so (pageInfo)
ORDER_RETURNS = (
    """
query OrderReturns($id: ID!) {
  order(id: $id) {
    id name currencyCode displayFinancialStatus cancelledAt
    totalReceivedSet { shopMoney { amount currencyCode } }
    totalRefundedSet { shopMoney { amount currencyCode } }
    fulfillments(first: 10) {
      id
      location { id }
      fulfillmentLineItems(first: 10) {
        nodes { id quantity lineItem { id sku } }
      }
    }
    returns(first: 5) {
      pageInfo { hasNextPage }
      nodes { ...ReturnFields }
    }
  }
}
"""
    + RETURN_FIELDS
)

# the return made comes back whole: no read of the order after it
RETURN_CREATE = (
    """
mutation ReturnCreate($returnInput: ReturnInput!) {
  returnCreate(returnInput: $returnInput) {
    return { ...ReturnFields }
    userErrors { code field message }
  }
}
"""
    + RETURN_FIELDS
)

REVERSE_FULFILLMENT_ORDER_DISPOSE = """
mutation ReverseFulfillmentOrderDispose(
  $dispositionInputs: [ReverseFulfillmentOrderDisposeInput!]!
) {
  reverseFulfillmentOrderDispose(dispositionInputs: $dispositionInputs) {
    reverseFulfillmentOrderLineItems { id dispositions { type quantity } }
    userErrors { code field message }
  }
}
"""

RETURN_SUGGESTED_REFUND = """
query ReturnSuggestedRefund($id: ID!, $lines: [ReturnRefundLineItemInput!]!) {
  return(id: $id) {
    id
    suggestedRefund(returnRefundLineItems: $lines) {
      amount { shopMoney { amount currencyCode } }
      maximumRefundable { shopMoney { amount currencyCode } }
      suggestedTransactions {
        gateway kind
        amountSet { shopMoney { amount currencyCode } }
        parentTransaction { id }
      }
    }
  }
}
"""

RETURN_REFUND = """
mutation ReturnRefund($returnRefundInput: ReturnRefundInput!) {
  returnRefund(returnRefundInput: $returnRefundInput) {
    refund { id note totalRefundedSet { shopMoney { amount currencyCode } } }
    userErrors { code field message }
  }
}
"""

# a return the customer requested online, approved when its goods reach a till: it comes
# back whole, its reverse fulfilment order made
RETURN_APPROVE_REQUEST = (
    """
mutation ReturnApproveRequest($input: ReturnApproveRequestInput!) {
  returnApproveRequest(input: $input) {
    return { ...ReturnFields }
    userErrors { code field message }
  }
}
"""
    + RETURN_FIELDS
)

RETURN_CLOSE = """
mutation ReturnClose($id: ID!) {
  returnClose(id: $id) {
    return { id status }
    userErrors { code field message }
  }
}
"""

# a blind return's candidates: the customer's newest orders and the SKUs on them (requested
# cost 132, less than one order's full read); only an order holding every returned SKU is read
# in full, and one with more lines than these is read in full too
ORDERS_BY_EMAIL = """
query OrdersByEmail($query: String!) {
  orders(first: 10, query: $query, sortKey: CREATED_AT, reverse: true) {
    pageInfo { hasNextPage }
    nodes {
      id name cancelledAt
      lineItems(first: 10) { pageInfo { hasNextPage } nodes { sku } }
    }
  }
}
"""

RETURNS_DOCUMENTS: dict[str, str] = {
    "ORDER_RETURNS": ORDER_RETURNS,
    "ORDERS_BY_EMAIL": ORDERS_BY_EMAIL,
    "RETURN_CREATE": RETURN_CREATE,
    "REVERSE_FULFILLMENT_ORDER_DISPOSE": REVERSE_FULFILLMENT_ORDER_DISPOSE,
    "RETURN_SUGGESTED_REFUND": RETURN_SUGGESTED_REFUND,
    "RETURN_REFUND": RETURN_REFUND,
    "RETURN_CLOSE": RETURN_CLOSE,
    "RETURN_APPROVE_REQUEST": RETURN_APPROVE_REQUEST,
}
