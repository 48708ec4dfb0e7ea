"""Inventory semantics of the simulator: compare-and-swap, idempotency, limits, invariant."""

from __future__ import annotations

from typing import Any

from tillsync.connectors.shopify.documents import ALL_DOCUMENTS, QUANTITY_NAMES
from tillsync_sim.shopify import ShopifySimulator

from .conftest import GQL, ids

SET = ALL_DOCUMENTS["INVENTORY_SET_QUANTITIES"]
ADJUST = ALL_DOCUMENTS["INVENTORY_ADJUST_QUANTITIES"]
LEVELS = ALL_DOCUMENTS["INVENTORY_ITEM_LEVELS"]


def _refs(
    sim: ShopifySimulator, sku: str = "SHIRT-S", loc: str = "Store Stockholm"
) -> tuple[str, str]:
    known = ids(sim)
    return known["variants"][sku]["inventory_item_id"], known["locations"][loc]


def _set_vars(
    item: str, loc: str, qty: int, change_from: Any = "omit", key: str = "k-1"
) -> dict[str, Any]:
    entry: dict[str, Any] = {"inventoryItemId": item, "locationId": loc, "quantity": qty}
    if change_from != "omit":
        entry["changeFromQuantity"] = change_from
    return {
        "key": key,
        "input": {
            "name": "available",
            "reason": "correction",
            "referenceDocumentUri": "gid://tillsync/StockSync/1",
            "quantities": [entry],
        },
    }


async def _quantities(gql: GQL, item: str, loc: str) -> dict[str, int]:
    answer = await gql(LEVELS, {"id": item, "first": 10, "names": list(QUANTITY_NAMES)})
    for level in answer["data"]["inventoryItem"]["inventoryLevels"]["nodes"]:
        if level["location"]["id"] == loc:
            return {q["name"]: q["quantity"] for q in level["quantities"]}
    raise AssertionError(f"{item} not stocked at {loc}")


def _invariant(q: dict[str, int]) -> None:
    parts = ("available", "committed", "reserved", "damaged", "safety_stock", "quality_control")
    assert q["on_hand"] == sum(q[p] for p in parts), q


async def test_compare_and_swap(sim: ShopifySimulator, gql: GQL) -> None:
    item, loc = _refs(sim)
    stale = await gql(SET, _set_vars(item, loc, 7, change_from=9, key="a"))
    payload = stale["data"]["inventorySetQuantities"]
    assert payload["inventoryAdjustmentGroup"] is None
    [err] = payload["userErrors"]
    assert err["code"] == "CHANGE_FROM_QUANTITY_STALE"
    assert err["field"] == ["input", "quantities", "0", "changeFromQuantity"]
    assert (await _quantities(gql, item, loc))["available"] == 10

    ok = await gql(SET, _set_vars(item, loc, 7, change_from=10, key="b"))
    group = ok["data"]["inventorySetQuantities"]["inventoryAdjustmentGroup"]
    changes = {c["name"]: c for c in group["changes"]}
    assert changes["available"]["delta"] == -3
    assert changes["available"]["quantityAfterChange"] == 7
    assert changes["on_hand"]["quantityAfterChange"] == 7
    q = await _quantities(gql, item, loc)
    assert q["available"] == 7
    _invariant(q)


async def test_explicit_null_skips_the_check(sim: ShopifySimulator, gql: GQL) -> None:
    item, loc = _refs(sim)
    answer = await gql(SET, _set_vars(item, loc, 3, change_from=None, key="n"))
    assert answer["data"]["inventorySetQuantities"]["userErrors"] == []
    assert (await _quantities(gql, item, loc))["available"] == 3


async def test_2026_04_requires_change_from_quantity(sim: ShopifySimulator, gql: GQL) -> None:
    item, loc = _refs(sim)
    answer = await gql(SET, _set_vars(item, loc, 3, key="m"))
    [err] = answer["data"]["inventorySetQuantities"]["userErrors"]
    assert err["code"] == "CHANGE_FROM_QUANTITY_REQUIRED"


async def test_2026_01_falls_back_to_compare_quantity(sim: ShopifySimulator, gql: GQL) -> None:
    item, loc = _refs(sim)
    answer = await gql(SET, _set_vars(item, loc, 3, key="old"), version="2026-01")
    [err] = answer["data"]["inventorySetQuantities"]["userErrors"]
    assert err["code"] == "COMPARE_QUANTITY_REQUIRED"


async def test_2026_04_requires_idempotent_directive(sim: ShopifySimulator, gql: GQL) -> None:
    item, loc = _refs(sim)
    doc = SET.replace(" @idempotent(key: $key)", "").replace(", $key: String!", "")
    variables = _set_vars(item, loc, 3, change_from=None)
    del variables["key"]
    answer = await gql(doc, variables)
    assert answer["data"] == {"inventorySetQuantities": None}
    assert answer["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    assert answer["errors"][0]["path"] == ["inventorySetQuantities"]
    # optional in 2026-01
    old = await gql(doc, variables, version="2026-01")
    assert old["data"]["inventorySetQuantities"]["userErrors"] == []


async def test_idempotent_replay_and_key_mismatch(sim: ShopifySimulator, gql: GQL) -> None:
    item, loc = _refs(sim)
    variables: dict[str, Any] = {
        "key": "adjust-1",
        "input": {
            "name": "available",
            "reason": "correction",
            "referenceDocumentUri": "gid://tillsync/Test/1",
            "changes": [{"inventoryItemId": item, "locationId": loc, "delta": 2}],
        },
    }
    first = await gql(ADJUST, variables)
    replay = await gql(ADJUST, variables)
    assert first["data"] == replay["data"]
    assert first["data"]["inventoryAdjustQuantities"]["userErrors"] == []
    # applied once
    assert (await _quantities(gql, item, loc))["available"] == 12

    variables["input"]["changes"][0]["delta"] = 5
    mismatch = await gql(ADJUST, variables)
    payload = mismatch["data"]["inventoryAdjustQuantities"]
    assert payload["inventoryAdjustmentGroup"] is None
    assert payload["userErrors"][0]["code"] == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
    assert (await _quantities(gql, item, loc))["available"] == 12


async def test_set_replay_returns_original_result(sim: ShopifySimulator, gql: GQL) -> None:
    item, loc = _refs(sim)
    variables = _set_vars(item, loc, 8, change_from=10, key="set-1")
    first = await gql(SET, variables)
    # the CAS would now be stale, yet a retry with the same key gets the first answer back
    again = await gql(SET, variables)
    assert again["data"] == first["data"]
    assert again["data"]["inventorySetQuantities"]["userErrors"] == []


async def test_at_most_250_quantities(sim: ShopifySimulator, gql: GQL) -> None:
    loc_id = ids(sim)["locations"]["Warehouse"]
    loc = int(loc_id.rsplit("/", 1)[1])
    sim.state.add_product("Many", [{"sku": f"MANY-{i}"} for i in range(251)], inventory={loc: 1})
    known = ids(sim)["variants"]
    entries = [
        {
            "inventoryItemId": known[f"MANY-{i}"]["inventory_item_id"],
            "locationId": loc_id,
            "quantity": 2,
            "changeFromQuantity": 1,
        }
        for i in range(251)
    ]
    base = {"name": "available", "reason": "correction", "referenceDocumentUri": None}
    over = await gql(SET, {"key": "big", "input": {**base, "quantities": entries}})
    assert over["data"] == {"inventorySetQuantities": None}
    assert over["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
    ok = await gql(SET, {"key": "big-250", "input": {**base, "quantities": entries[:250]}})
    payload = ok["data"]["inventorySetQuantities"]
    assert payload["userErrors"] == []
    assert len(payload["inventoryAdjustmentGroup"]["changes"]) == 500  # available + on_hand


async def test_item_not_stocked_then_activate(sim: ShopifySimulator, gql: GQL) -> None:
    item, loc = _refs(sim, "SHIRT-M", "Warehouse")
    answer = await gql(SET, _set_vars(item, loc, 5, change_from=None, key="ns"))
    [err] = answer["data"]["inventorySetQuantities"]["userErrors"]
    assert err["code"] == "ITEM_NOT_STOCKED_AT_LOCATION"
    activated = await gql(
        ALL_DOCUMENTS["INVENTORY_ACTIVATE"],
        {"inventoryItemId": item, "locationId": loc, "available": 0},
    )
    assert activated["data"]["inventoryActivate"]["userErrors"] == []
    again = await gql(SET, _set_vars(item, loc, 5, change_from=0, key="ns-2"))
    assert again["data"]["inventorySetQuantities"]["userErrors"] == []


async def test_errors_are_all_or_nothing(sim: ShopifySimulator, gql: GQL) -> None:
    item, loc = _refs(sim)
    variables = _set_vars(item, loc, 1, change_from=10, key="aon")
    variables["input"]["quantities"].append(
        {
            "inventoryItemId": "gid://shopify/InventoryItem/999",
            "locationId": loc,
            "quantity": 1,
            "changeFromQuantity": None,
        }
    )
    answer = await gql(SET, variables)
    [err] = answer["data"]["inventorySetQuantities"]["userErrors"]
    assert err["code"] == "INVALID_INVENTORY_ITEM"
    assert err["field"][:3] == ["input", "quantities", "1"]
    assert (await _quantities(gql, item, loc))["available"] == 10


async def test_quantity_invariant_through_order_lifecycle(sim: ShopifySimulator, gql: GQL) -> None:
    item, loc = _refs(sim)
    loc_id = int(loc.rsplit("/", 1)[1])
    st = sim.state

    order = st.place_order([("SHIRT-S", 3)], location_id=loc_id, delivery="PICK_UP")
    q = await _quantities(gql, item, loc)
    assert (q["available"], q["committed"], q["on_hand"]) == (7, 3, 10)
    _invariant(q)

    fo_id = order.fulfillment_order_ids[0]
    line = st.fulfillment_orders[fo_id].lines[0]
    st.fulfil(fo_id, [(line.id, 2)])
    q = await _quantities(gql, item, loc)
    assert (q["available"], q["committed"], q["on_hand"]) == (7, 1, 8)
    _invariant(q)

    li = order.line_items[0]
    st.refund(order.id, [(li.id, 2, "RETURN", loc_id)])  # the two fulfilled come back
    q = await _quantities(gql, item, loc)
    assert (q["available"], q["committed"], q["on_hand"]) == (9, 1, 10)
    _invariant(q)

    st.cancel_order(order.id)  # the last unit was never fulfilled: released
    q = await _quantities(gql, item, loc)
    assert (q["available"], q["committed"], q["on_hand"]) == (10, 0, 10)
    _invariant(q)


async def test_refund_create_restocks_location(sim: ShopifySimulator, gql: GQL) -> None:
    item, loc = _refs(sim)
    loc_id = int(loc.rsplit("/", 1)[1])
    order = sim.state.place_order([("SHIRT-S", 1)], location_id=loc_id)
    sim.state.fulfil(order.fulfillment_order_ids[0])
    [sale] = order.transactions
    variables = {
        "key": "refund-1",
        "input": {
            "orderId": f"gid://shopify/Order/{order.id}",
            "note": "returned in store",
            "refundLineItems": [
                {
                    "lineItemId": f"gid://shopify/LineItem/{order.line_items[0].id}",
                    "quantity": 1,
                    "restockType": "RETURN",
                    "locationId": loc,
                }
            ],
            # the money goes back only as the transactions say (none: the lines alone)
            "transactions": [
                {
                    "orderId": f"gid://shopify/Order/{order.id}",
                    "parentId": f"gid://shopify/OrderTransaction/{sale.id}",
                    "amount": "499.00",
                    "gateway": sale.gateway,
                    "kind": "REFUND",
                }
            ],
        },
    }
    answer = await gql(ALL_DOCUMENTS["REFUND_CREATE"], variables)
    refund = answer["data"]["refundCreate"]
    assert refund["userErrors"] == []
    assert refund["refund"]["totalRefundedSet"]["shopMoney"]["amount"] == "499.00"
    q = await _quantities(gql, item, loc)
    assert (q["available"], q["committed"], q["on_hand"]) == (10, 0, 10)
    # replay with the same key does not refund twice
    await gql(ALL_DOCUMENTS["REFUND_CREATE"], variables)
    assert len(sim.state.orders[order.id].refund_ids) == 1


async def test_order_query_shows_pickup_fulfillment_order(sim: ShopifySimulator, gql: GQL) -> None:
    _, loc = _refs(sim)
    loc_id = int(loc.rsplit("/", 1)[1])
    order = sim.state.place_order(
        [("SHIRT-S", 1), ("SHIRT-M", 2)],
        location_id=loc_id,
        delivery="PICK_UP",
        email="pickup@example.com",
    )
    gid = f"gid://shopify/Order/{order.id}"
    answer = await gql(ALL_DOCUMENTS["ORDER_WITH_FULFILLMENT_ORDERS"], {"id": gid})
    data = answer["data"]["order"]
    [fo] = data["fulfillmentOrders"]["nodes"]
    assert fo["deliveryMethod"]["methodType"] == "PICK_UP"
    assert fo["assignedLocation"]["location"]["id"] == loc
    assert [(n["sku"], n["remainingQuantity"]) for n in fo["lineItems"]["nodes"]] == [
        ("SHIRT-S", 1),
        ("SHIRT-M", 2),
    ]
    prepared = await gql(
        ALL_DOCUMENTS["FULFILLMENT_ORDER_PREPARED_FOR_PICKUP"],
        {"input": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"]}]}},
    )
    assert prepared["data"]["fulfillmentOrderLineItemsPreparedForPickup"]["userErrors"] == []
    created = await gql(
        ALL_DOCUMENTS["FULFILLMENT_CREATE"],
        {"fulfillment": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"]}]}},
    )
    assert created["data"]["fulfillmentCreate"]["userErrors"] == []
    after = await gql(ALL_DOCUMENTS["ORDER_WITH_FULFILLMENT_ORDERS"], {"id": gid})
    assert after["data"]["order"]["displayFulfillmentStatus"] == "FULFILLED"
    assert after["data"]["order"]["fulfillmentOrders"]["nodes"][0]["status"] == "CLOSED"
