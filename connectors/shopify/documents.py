"""Every GraphQL document tillsync sends to Shopify, in one place.

Values always travel as variables, never interpolated, so each document is a fixed string: the
contract tests validate every entry of ``ALL_DOCUMENTS`` against the Admin schema plus overlay,
and the simulator's validation cache sees each text once. Written to the 2026-04 rules:
``changeFromQuantity`` on every set quantity and ``@idempotent(key:)`` on inventory and refund
mutations.
"""

from __future__ import annotations

from tillsync.connectors.shopify.returns_documents import RETURNS_DOCUMENTS

QUANTITY_NAMES = (
    "available",
    "on_hand",
    "committed",
    "reserved",
    "damaged",
    "safety_stock",
    "quality_control",
    "incoming",
)

SHOP_AND_LOCATIONS = """
query ShopAndLocations($first: Int!, $after: String) {
  shop { id name myshopifyDomain currencyCode ianaTimezone plan { displayName shopifyPlus } }
  locations(first: $first, after: $after, includeInactive: true) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyResourceId name isActive fulfillsOnlineOrders
      address { address1 city zip countryCode }
    }
  }
}
"""

VARIANTS_BY_SKU = """
query VariantsBySku($query: String!, $first: Int!, $after: String) {
  productVariants(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyResourceId sku barcode title price
      product { id title status }
      inventoryItem { id tracked }
    }
  }
}
"""

INVENTORY_ITEM_LEVELS = """
query InventoryItemLevels($id: ID!, $first: Int!, $names: [String!]!) {
  inventoryItem(id: $id) {
    id sku tracked
    inventoryLevels(first: $first) {
      nodes {
        id updatedAt
        location { id }
        quantities(names: $names) { name quantity updatedAt }
      }
    }
  }
}
"""

INVENTORY_SET_QUANTITIES = """
mutation InventorySetQuantities($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup {
      id createdAt reason referenceDocumentUri
      changes { name delta quantityAfterChange item { id } location { id } }
    }
    userErrors { code field message }
  }
}
"""

INVENTORY_ADJUST_QUANTITIES = """
mutation InventoryAdjustQuantities($input: InventoryAdjustQuantitiesInput!, $key: String!) {
  inventoryAdjustQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup {
      id createdAt reason referenceDocumentUri
      changes { name delta quantityAfterChange item { id } location { id } }
    }
    userErrors { code field message }
  }
}
"""

INVENTORY_ACTIVATE = """
mutation InventoryActivate($inventoryItemId: ID!, $locationId: ID!, $available: Int) {
  inventoryActivate(inventoryItemId: $inventoryItemId, locationId: $locationId,
                    available: $available) {
    inventoryLevel {
      id
      location { id }
      quantities(names: ["available", "on_hand"]) { name quantity }
    }
    userErrors { field message }
  }
}
"""

ORDER_WITH_FULFILLMENT_ORDERS = """
query OrderWithFulfillmentOrders($id: ID!) {
  order(id: $id) {
    id legacyResourceId name email createdAt updatedAt cancelledAt
    displayFinancialStatus displayFulfillmentStatus
    totalPriceSet { shopMoney { amount currencyCode } }
    customer { id email }
    fulfillmentOrders(first: 5) {
      nodes {
        id status updatedAt
        assignedLocation { name location { id } }
        deliveryMethod { methodType }
        lineItems(first: 50) {
          nodes {
            id sku remainingQuantity totalQuantity inventoryItemId
            lineItem { id quantity }
            variant { id }
          }
        }
      }
    }
  }
}
"""

PICKUP_FULFILLMENT_ORDER = """
query PickupFulfillmentOrder($id: ID!, $after: String) {
  fulfillmentOrder(id: $id) {
    id status
    deliveryMethod { methodType }
    assignedLocation { location { id } }
    destination { firstName lastName address1 address2 city zip province countryCode phone }
    order {
      id name email displayFinancialStatus currencyCode
      transactions(first: 20) { kind status authorizationExpiresAt }
    }
    lineItems(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id sku remainingQuantity totalQuantity
        lineItem { id name discountedUnitPriceSet { shopMoney { amount } } }
      }
    }
  }
}
"""

FULFILLMENT_ORDER_PREPARED_FOR_PICKUP = """
mutation PreparedForPickup($input: FulfillmentOrderLineItemsPreparedForPickupInput!) {
  fulfillmentOrderLineItemsPreparedForPickup(input: $input) {
    userErrors { code field message }
  }
}
"""

FULFILLMENT_CREATE = """
mutation FulfillmentCreate($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) {
    fulfillment { id status displayStatus createdAt location { id } }
    userErrors { field message }
  }
}
"""

ORDER_PAYMENT = """
query OrderPayment($id: ID!) {
  order(id: $id) {
    id displayFinancialStatus currencyCode cancelledAt
    fulfillmentOrders(first: 50) { nodes { id status } }
    fulfillments(first: 50) { id status }
    transactions(first: 50) {
      id kind status authorizationExpiresAt
      amountSet { shopMoney { amount currencyCode } }
      parentTransaction { id }
    }
  }
}
"""

ORDER_CAPTURE = """
mutation OrderCapture($input: OrderCaptureInput!) {
  orderCapture(input: $input) {
    transaction { id kind status amountSet { shopMoney { amount currencyCode } } }
    userErrors { field message }
  }
}
"""

ORDER_MARK_AS_PAID = """
mutation OrderMarkAsPaid($input: OrderMarkAsPaidInput!) {
  orderMarkAsPaid(input: $input) {
    order { id displayFinancialStatus }
    userErrors { field message }
  }
}
"""

ORDER_CANCEL = """
mutation OrderCancel(
  $orderId: ID!, $refund: Boolean!, $restock: Boolean!, $reason: OrderCancelReason!,
  $notifyCustomer: Boolean, $staffNote: String
) {
  orderCancel(
    orderId: $orderId, refund: $refund, restock: $restock, reason: $reason,
    notifyCustomer: $notifyCustomer, staffNote: $staffNote
  ) {
    job { id done }
    orderCancelUserErrors { code field message }
  }
}
"""

REFUND_CREATE = """
mutation RefundCreate($input: RefundInput!, $key: String!) {
  refundCreate(input: $input) @idempotent(key: $key) {
    refund {
      id legacyResourceId createdAt note
      totalRefundedSet { shopMoney { amount currencyCode } }
    }
    userErrors { field message }
  }
}
"""

# what Shopify would pay back for some of an order's lines, and from which payments: the
# units a customer declined at the store's counter are refunded as it suggests
ORDER_SUGGESTED_REFUND = """
query OrderSuggestedRefund($id: ID!, $lines: [RefundLineItemInput!]) {
  order(id: $id) {
    id
    suggestedRefund(refundLineItems: $lines) {
      amountSet { shopMoney { amount currencyCode } }
      maximumRefundableSet { shopMoney { amount currencyCode } }
      suggestedTransactions {
        gateway kind
        amountSet { shopMoney { amount currencyCode } }
        parentTransaction { id }
      }
    }
  }
}
"""

CUSTOMERS_BY_EMAIL = """
query CustomersByEmail($query: String!) {
  customers(first: 5, query: $query) {
    nodes {
      id legacyResourceId email firstName lastName phone tags note updatedAt
      metafields(first: 20) { nodes { namespace key value type } }
    }
  }
}
"""

CUSTOMER_CREATE = """
mutation CustomerCreate($input: CustomerInput!) {
  customerCreate(input: $input) {
    customer { id legacyResourceId email firstName lastName phone tags }
    userErrors { field message }
  }
}
"""

CUSTOMER_UPDATE = """
mutation CustomerUpdate($input: CustomerInput!) {
  customerUpdate(input: $input) {
    customer { id legacyResourceId email firstName lastName phone tags }
    userErrors { field message }
  }
}
"""

TAGS_ADD = """
mutation TagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) {
    node { id }
    userErrors { field message }
  }
}
"""

METAFIELDS_SET = """
mutation MetafieldsSet($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { id namespace key value type }
    userErrors { code field message }
  }
}
"""

# Cost: first x (1 + 2 + variantsFirst x 2) must stay under 1,000: 20 products of 20 variants
# is 862 points.
PRODUCTS_PAGE = """
query ProductsPage($first: Int!, $after: String, $query: String, $variantsFirst: Int = 20) {
  products(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyResourceId title handle status vendor productType tags updatedAt
      variants(first: $variantsFirst) {
        nodes { id legacyResourceId sku barcode title price inventoryItem { id } }
      }
    }
  }
}
"""

PRODUCT_BY_ID = """
query ProductById($id: ID!) {
  product(id: $id) {
    id legacyResourceId title handle status vendor productType tags updatedAt
    variants(first: 100) {
      nodes { id legacyResourceId sku barcode title price inventoryItem { id } }
    }
  }
}
"""

PRODUCT_CREATE = """
mutation ProductCreate($product: ProductCreateInput!) {
  productCreate(product: $product) {
    product { id title handle status variants(first: 1) { nodes { id inventoryItem { id } } } }
    userErrors { field message }
  }
}
"""

PRODUCT_UPDATE = """
mutation ProductUpdate($product: ProductUpdateInput!) {
  productUpdate(product: $product) {
    product { id title handle status }
    userErrors { field message }
  }
}
"""

BULK_INVENTORY_EXPORT_QUERY = """
{
  inventoryItems {
    edges {
      node {
        id sku
        inventoryLevels {
          edges {
            node {
              id
              location { id }
              quantities(names: ["available", "on_hand", "committed"]) { name quantity }
            }
          }
        }
      }
    }
  }
}
"""

BULK_OPERATION_RUN_QUERY = """
mutation BulkOperationRunQuery($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status createdAt }
    userErrors { code field message }
  }
}
"""

CURRENT_BULK_OPERATION = """
query CurrentBulkOperation {
  currentBulkOperation(type: QUERY) {
    id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url
    partialDataUrl
  }
}
"""

# One operation by its id: `currentBulkOperation` names only the newest, which is another's
# once a second export (another worker starting, a reconcile) starts after ours finished.
BULK_OPERATION_BY_ID = """
query BulkOperationById($id: ID!) {
  node(id: $id) {
    ... on BulkOperation { id status errorCode url }
  }
}
"""

WEBHOOK_SUBSCRIPTION_CREATE = """
mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!,
                                   $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic format endpoint { __typename } }
    userErrors { field message }
  }
}
"""

ALL_DOCUMENTS: dict[str, str] = {
    "SHOP_AND_LOCATIONS": SHOP_AND_LOCATIONS,
    "VARIANTS_BY_SKU": VARIANTS_BY_SKU,
    "INVENTORY_ITEM_LEVELS": INVENTORY_ITEM_LEVELS,
    "INVENTORY_SET_QUANTITIES": INVENTORY_SET_QUANTITIES,
    "INVENTORY_ADJUST_QUANTITIES": INVENTORY_ADJUST_QUANTITIES,
    "INVENTORY_ACTIVATE": INVENTORY_ACTIVATE,
    "ORDER_WITH_FULFILLMENT_ORDERS": ORDER_WITH_FULFILLMENT_ORDERS,
    "PICKUP_FULFILLMENT_ORDER": PICKUP_FULFILLMENT_ORDER,
    "FULFILLMENT_ORDER_PREPARED_FOR_PICKUP": FULFILLMENT_ORDER_PREPARED_FOR_PICKUP,
    "FULFILLMENT_CREATE": FULFILLMENT_CREATE,
    "ORDER_PAYMENT": ORDER_PAYMENT,
    "ORDER_CAPTURE": ORDER_CAPTURE,
    "ORDER_MARK_AS_PAID": ORDER_MARK_AS_PAID,
    "ORDER_CANCEL": ORDER_CANCEL,
    "REFUND_CREATE": REFUND_CREATE,
    "ORDER_SUGGESTED_REFUND": ORDER_SUGGESTED_REFUND,
    "CUSTOMERS_BY_EMAIL": CUSTOMERS_BY_EMAIL,
    "CUSTOMER_CREATE": CUSTOMER_CREATE,
    "CUSTOMER_UPDATE": CUSTOMER_UPDATE,
    "TAGS_ADD": TAGS_ADD,
    "METAFIELDS_SET": METAFIELDS_SET,
    "PRODUCTS_PAGE": PRODUCTS_PAGE,
    "PRODUCT_BY_ID": PRODUCT_BY_ID,
    "PRODUCT_CREATE": PRODUCT_CREATE,
    "PRODUCT_UPDATE": PRODUCT_UPDATE,
    "BULK_INVENTORY_EXPORT_QUERY": BULK_INVENTORY_EXPORT_QUERY,
    "BULK_OPERATION_RUN_QUERY": BULK_OPERATION_RUN_QUERY,
    "CURRENT_BULK_OPERATION": CURRENT_BULK_OPERATION,
    "BULK_OPERATION_BY_ID": BULK_OPERATION_BY_ID,
    "WEBHOOK_SUBSCRIPTION_CREATE": WEBHOOK_SUBSCRIPTION_CREATE,
    **RETURNS_DOCUMENTS,
}
