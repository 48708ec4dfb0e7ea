"""End to end: online orders through their whole life, held units re-derived from Shopify.

Real broker, the worker as its own process, both simulators over HTTP. Orders of several lines
(two of one SKU, quantities above one) are placed, partly fulfilled, moved between stores and
to an unmapped location, refunded with and without restock, cancelled before and after a
partial fulfilment, and a fulfilment is cancelled after its Move Out; at the end every position
equals Sitoo's available less the buffer and Shopify's own committed units, and every Move Out
(and reversal) is in Sitoo exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import started
from tests.support.waiting import async_wait_until
from tillsync_sim.scenario.driver import mismatches
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@pytest.fixture
async def harness(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with started(kafka_bootstrap, NetworkSpec(stores=3, skus=20, buffer=1), tmp_path) as h:
        yield h


async def _diagnosis(h: Harness, off: dict[tuple[str, int], tuple[int, int]]) -> str:
    assert h.shopify is not None and h.sitoo is not None and h.network is not None
    lines = []
    for (sku, loc), (have, want) in list(off.items())[:6]:
        state = await h.worker_json(f"/state/stock/{sku}")
        here = [p for p in state["positions"] if p["shopify_location_id"] == loc]
        level = h.shopify.state.levels[(h.shopify.state.item_for(sku).id, loc)]
        lines.append(
            f"{sku}@{loc}: shopify {have} (committed {level.get('committed')}), want {want};"
            f" worker {here}"
        )
    return "\n".join(lines)


async def _converged(h: Harness, timeout: float) -> None:
    async def done() -> bool:
        return not mismatches(h.network, h.shopify, h.sitoo)  # type: ignore[arg-type]

    try:
        await async_wait_until(done, timeout, interval=0.25, what="Shopify to equal the targets")
    except AssertionError:
        off = mismatches(h.network, h.shopify, h.sitoo)  # type: ignore[arg-type]
        detail = await _diagnosis(h, off)
        raise AssertionError(f"{len(off)} positions differ:\n{detail}") from None


def _sf_transactions(h: Harness) -> Counter[str]:
    assert h.sitoo is not None
    return Counter(
        t.externalid or ""
        for t in h.sitoo.state.transactions_from(1)
        if (t.externalid or "").startswith("sf-")
    )


async def _in_sitoo(h: Harness, *externalids: str) -> None:
    async def there() -> bool:
        return set(externalids) <= set(_sf_transactions(h))

    await async_wait_until(there, 60, interval=0.25, what=f"{externalids} in Sitoo")


async def _stock_up(h: Harness, skus: list[str], units: int) -> None:
    """Deliver `units` of each SKU to every store in Sitoo, and wait until Shopify shows them:
    no target is clamped at 0 then, so a unit held wrongly shows."""
    assert h.sitoo is not None and h.network is not None
    for store in h.network.stores:
        h.sitoo.state.receive_delivery(
            store.sitoo_warehouse_id, [{"sku": sku, "quantity": units} for sku in skus]
        )
    await _converged(h, 60)


def _fo_lines(h: Harness, fo_id: int) -> list[Any]:
    assert h.shopify is not None
    return list(h.shopify.state.fulfillment_orders[fo_id].lines)


async def test_orders_through_their_whole_life_end_exact(harness: Harness) -> None:
    h = harness
    assert h.shopify is not None and h.sitoo is not None and h.network is not None
    st = h.shopify.state
    await _converged(h, 60)
    a, b, c = (s.shopify_location_id for s in h.network.stores)
    skus = h.network.skus[:10]
    await _stock_up(h, skus, 20)
    unmapped = st.add_location("Pop-up (not mapped)").id
    for sku in skus[:4]:
        st.activate(st.item_for(sku).id, unmapped, 50)

    # 1. multi-line, two lines of one SKU, quantities above one: partly fulfilled, then the
    #    rest cancelled before its Move Out could matter
    o1 = st.place_order([(skus[0], 2), (skus[0], 1), (skus[1], 3)], location_id=a)
    [fo1] = o1.fulfillment_order_ids
    first, _, third = _fo_lines(h, fo1)
    st.fulfil(fo1, [(first.id, 2), (third.id, 1)])
    st.cancel_order(o1.id)

    # 2. moved whole to another mapped store, then fulfilled there
    o2 = st.place_order([(skus[2], 2)], location_id=a)
    [fo2] = o2.fulfillment_order_ids
    st.move_fulfillment_order(fo2, b)
    st.fulfil(fo2)

    # 3. partly fulfilled, the rest moved to an unmapped location
    o3 = st.place_order([(skus[3], 3)], location_id=b)
    [fo3] = o3.fulfillment_order_ids
    [line3] = _fo_lines(h, fo3)
    st.fulfil(fo3, [(line3.id, 1)])
    st.move_fulfillment_order(fo3, unmapped)

    # 4. refunds before fulfilment: one line restocked (CANCEL), one not
    o4 = st.place_order([(skus[4], 2), (skus[5], 2)], location_id=c)
    li4, li5 = o4.line_items
    st.refund(o4.id, [(li4.id, 1, "cancel", c), (li5.id, 1, "no_restock", None)])

    # 5. a pickup order, collected
    o5 = st.place_order([(skus[6], 2)], location_id=c, delivery="PICK_UP")
    [fo5] = o5.fulfillment_order_ids
    st.prepare_for_pickup(fo5)
    st.fulfil(fo5)

    # 6. a fulfilment cancelled after its Move Out reached Sitoo, then fulfilled again
    o6 = st.place_order([(skus[7], 2)], location_id=a)
    [fo6] = o6.fulfillment_order_ids
    f6 = st.fulfil(fo6)
    await _in_sitoo(h, f"sf-{o6.id}-{f6.id}")
    await _converged(h, 30)
    st.cancel_fulfillment(f6.id)
    await _in_sitoo(h, f"sf-{o6.id}-{f6.id}-r")
    await _converged(h, 30)
    f6b = st.fulfil(fo6)
    await _in_sitoo(h, f"sf-{o6.id}-{f6b.id}")

    # 7. an order still open at the end, and one cancelled before any fulfilment
    st.place_order([(skus[8], 4), (skus[9], 1)], location_id=b)
    o8 = st.place_order([(skus[9], 2)], location_id=c)
    st.cancel_order(o8.id)

    await _converged(h, 60)
    externalids = _sf_transactions(h)
    assert all(n == 1 for n in externalids.values()), externalids
    expected = {
        f"sf-{o1.id}-",
        f"sf-{o2.id}-",
        f"sf-{o3.id}-",
        f"sf-{o5.id}-",
        f"sf-{o6.id}-",
    }
    assert {e.rsplit("-", 1)[0] + "-" for e in externalids if not e.endswith("-r")} == expected
    assert sum(1 for e in externalids if e.endswith("-r")) == 1, externalids
    assert len([e for e in externalids if e.startswith(f"sf-{o6.id}-")]) == 3
