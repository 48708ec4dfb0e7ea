"""An order's fulfilment state is read in full: every page of every connection."""

from __future__ import annotations

from typing import Any

from tillsync.connectors.shopify import stock_documents as docs
from tillsync.connectors.shopify.client import ShopifyClient
from tillsync.connectors.shopify.fulfilment_state import FulfilmentStateReader
from tillsync_sim.shopify import ShopifySimulator

JSON = dict[str, Any]


def _page(nodes: list[JSON], start: int, size: int) -> JSON:
    chunk = nodes[start : start + size]
    more = start + size < len(nodes)
    return {
        "nodes": chunk,
        "pageInfo": {"hasNextPage": more, "endCursor": str(start + size) if more else None},
    }


class PagedShopify:
    """Answers the stock documents for one order of `fos` fulfilment orders of `lines` lines
    each, and `fulfilments` fulfilments of `f_lines` lines each, a page at a time as
    Shopify does."""

    def __init__(self, fos: int, lines: int, fulfilments: int, f_lines: int) -> None:
        self.fos = [
            {
                "id": f"gid://shopify/FulfillmentOrder/{n}",
                "status": "OPEN",
                "assignedLocation": {"location": {"id": f"gid://shopify/Location/{n % 3}"}},
                "deliveryMethod": {"methodType": "SHIPPING"},
                "lines": [
                    {
                        "id": f"gid://shopify/FulfillmentOrderLineItem/{n * 1000 + k}",
                        "sku": f"S{k}",
                        "remainingQuantity": 1,
                    }
                    for k in range(lines)
                ],
            }
            for n in range(1, fos + 1)
        ]
        self.fulfilments = [
            {
                "id": f"gid://shopify/Fulfillment/{n}",
                "status": "SUCCESS",
                "location": {"id": "gid://shopify/Location/1"},
                "lines": [{"quantity": 2, "lineItem": {"sku": f"S{k}"}} for k in range(f_lines)],
            }
            for n in range(1, fulfilments + 1)
        ]
        self.calls: list[str] = []

    def _fo(self, fo: JSON, first: int) -> JSON:
        node = {k: v for k, v in fo.items() if k != "lines"}
        return node | {"lineItems": _page(fo["lines"], 0, first)}

    def _f(self, f: JSON, first: int | None) -> JSON:
        node = {k: v for k, v in f.items() if k != "lines"}
        if first is None:
            return node
        return node | {"fulfillmentLineItems": _page(f["lines"], 0, first)}

    async def execute(self, document: str, variables: JSON) -> JSON:
        name = next(k for k, v in docs.STOCK_DOCUMENTS.items() if v == document)
        self.calls.append(name)
        after = int(variables.get("after") or 0)
        if name == "ORDER_HOLDS":
            fos = self.fos[: docs.HOLDS_FULFILLMENT_ORDERS]
            return {
                "order": {
                    "fulfillmentOrders": {
                        "nodes": [self._fo(fo, docs.HOLDS_LINES) for fo in fos],
                        "pageInfo": _page(self.fos, 0, docs.HOLDS_FULFILLMENT_ORDERS)["pageInfo"],
                    },
                    "fulfillments": [
                        self._f(f, None) for f in self.fulfilments[: docs.HOLDS_FULFILLMENTS]
                    ],
                }
            }
        if name == "ORDER_FULFILLMENT_ORDERS":
            page = _page(self.fos, after, docs.PAGE_FULFILLMENT_ORDERS)
            page["nodes"] = [self._fo(fo, 1) for fo in page["nodes"]]
            return {"order": {"fulfillmentOrders": page}}
        if name == "FULFILLMENT_ORDER_LINES":
            fo = next(fo for fo in self.fos if fo["id"] == variables["id"])
            return {"fulfillmentOrder": {"lineItems": _page(fo["lines"], after, docs.PAGE_LINES)}}
        if name == "ORDER_FULFILLMENTS":
            wide = self.fulfilments[: variables["first"]]
            return {"order": {"fulfillments": [self._f(f, None) for f in wide]}}
        if name == "FULFILLMENT_LINES":
            f = next(f for f in self.fulfilments if f["id"] == variables["id"])
            page = _page(f["lines"], after, variables["first"])
            return {"fulfillment": {"fulfillmentLineItems": page}}
        raise AssertionError(name)


async def test_every_fulfilment_order_and_line_is_read_past_the_first_pages() -> None:
    # review item 7: the routing query read 5 fulfilment orders of 10 lines, and no further
    shopify = PagedShopify(fos=23, lines=95, fulfilments=60, f_lines=45)
    state = await FulfilmentStateReader(shopify.execute).read(55)
    assert state is not None and state.order_id == 55
    assert [fo.id for fo in state.fulfilment_orders] == list(range(1, 24))
    assert all(len(fo.lines) == 95 for fo in state.fulfilment_orders)
    assert {line.sku for line in state.fulfilment_orders[-1].lines} == {f"S{k}" for k in range(95)}
    assert [f.id for f in state.fulfilments] == list(range(1, 61))
    assert all(sum(ln.quantity for ln in f.lines) == 90 for f in state.fulfilments)
    assert state.fulfilment_orders[0].location_id == 1 and state.fulfilments[0].status == "SUCCESS"


async def test_a_small_order_is_one_call_and_a_fulfilments_lines_are_read_once() -> None:
    placed = PagedShopify(fos=1, lines=3, fulfilments=0, f_lines=0)
    state = await FulfilmentStateReader(placed.execute).read(55)
    assert state is not None and placed.calls == ["ORDER_HOLDS"]
    assert [ln.remaining for ln in state.fulfilment_orders[0].lines] == [1, 1, 1]
    # a fulfilment the caller does not know: its lines are read, once
    shipped = PagedShopify(fos=1, lines=3, fulfilments=1, f_lines=3)
    state = await FulfilmentStateReader(shipped.execute).read(55)
    assert state is not None and shipped.calls == ["ORDER_HOLDS", "FULFILLMENT_LINES"]
    [f] = state.fulfilments
    assert (f.id, f.status, f.location_id, len(f.lines)) == (1, "SUCCESS", 1, 3)
    # one it knows (from its webhook or an earlier read): listed with its status, lines kept
    shipped.calls.clear()
    shipped.fulfilments[0]["status"] = "CANCELLED"
    again = await FulfilmentStateReader(shipped.execute).read(55, {1: f.lines})
    assert again is not None and shipped.calls == ["ORDER_HOLDS"]
    assert [(g.id, g.status, g.lines) for g in again.fulfilments] == [(1, "CANCELLED", f.lines)]


async def test_an_order_shopify_does_not_have_is_none() -> None:
    async def execute(document: str, variables: JSON) -> JSON:
        return {"order": None}

    assert await FulfilmentStateReader(execute).read(404) is None


async def test_the_simulator_answers_every_page(
    sim: ShopifySimulator, client: ShopifyClient
) -> None:
    st = sim.state
    store = next(loc.id for loc in st.locations.values() if loc.name == "Store Stockholm")
    lines = [("SHIRT-S", 1)] * 6 + [("SHIRT-M", 1)] * 4  # 10 lines, two SKUs repeated
    order = st.place_order(lines, location_id=store)
    [fo_id] = order.fulfillment_order_ids
    fo = st.fulfillment_orders[fo_id]
    for line in fo.lines[:5]:  # five fulfilments of one line each: past the first list
        st.fulfil(fo_id, [(line.id, 1)])
    state = await client.order_fulfilment_state(order.id)
    assert state is not None
    [read] = state.fulfilment_orders
    assert len(read.lines) == 10 and sum(ln.remaining for ln in read.lines) == 5
    assert read.location_id == store and read.status == "IN_PROGRESS"
    assert len(state.fulfilments) == 5
    assert {(f.location_id, f.status) for f in state.fulfilments} == {(store, "SUCCESS")}
    assert sum(ln.quantity for f in state.fulfilments for ln in f.lines) == 5
    assert await client.order_of_fulfilment_order(fo_id) == order.id
    assert await client.order_fulfilment_state(10**9) is None
