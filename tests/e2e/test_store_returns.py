"""End to end: returns at Sitoo's tills of online orders become Shopify returns, restocked and
refunded by rule, exactly once, through a SIGKILL and a replay of the raw orders topic; staff
refunds in Shopify become credit orders in Sitoo, and those that restock at a store Move Ins
there.

Real broker, the worker as its own process, both simulators over HTTP; Shopify sends some
webhooks twice or out of order and Sitoo some events twice. Online orders are
picked up in store through the pickup flow, then returned at the tills in every way a store
sees: in full and paid back at the till (some asked for online first: that return is carried
out), exchanged for other goods (on the same receipt, or by
a virtual payment into a new sale), in part with the money to go back to the card online,
the rest of one line later, damaged, at another store, for a reason code tillsync's table does
not name; returned with no receipt (blind), found by the customer's email or, when two orders
fit, linked by staff with ``tillsync returns link`` (the CLI as its own process); and till
sales returned, which are Sitoo's alone. Staff refund other orders in
Shopify's admin, restocked at the pickup's store, at another, or not at all (of some, Shopify
never delivers the ``refunds/create``). Halfway the
worker is killed without a word while the tills go on; after it is back, every record of
``raw.sitoo.orders`` and ``raw.shopify.webhooks`` is produced again. Meanwhile Shopify never
shows a unit more than Sitoo has (a return restocked by both platforms is one change), and at
the end:

* every credit order of an online order has exactly one Shopify return, marked with its id,
  closed, its reason mapped and each unit restocked where the till took it back (or not: when
  damaged, or when Shopify had no room left there, the store sold below its buffer);
* per order, Shopify refunded exactly what the tills did not pay back, never more than it
  received;
* each staff refund restocked at a store is one Move In there, of its units; each is one credit
  order against the Sitoo order the till handed over, with its line and money;
* every position equals its target from the simulators' own state; nothing is dead-lettered.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import converged, started
from tests.e2e.test_ship_from_store import _sitoo_order, _sitoo_state
from tests.support.history import records_naming
from tests.support.replay import count_records, replay
from tests.support.waiting import async_wait_until
from tillsync.schemas.sitoo import ORDER_OPEN, TRANSACTION_REFUND
from tillsync.streams import topics
from tillsync.streams.returns.plan import marker
from tillsync_sim.scenario.driver import actual_available, expected_available
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec
from tillsync_sim.shopify.state import ReturnRequest

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@dataclass(frozen=True)
class Scale:
    """How big a run is: the suite's, or the issue's own (about 1,000 credit orders and 300
    staff refunds over 5 stores), chosen with ``TILLSYNC_RETURNS_SCALE=issue``."""

    orders: int  # online orders returned at the tills
    refunded: int  # more orders picked up, then refunded by staff in Shopify
    stores: int
    skus: int
    stock: tuple[int, int]  # each position's first level, at least and at most
    within: float  # seconds for every return of a half to be in Shopify
    plan: str  # Shopify's: its API budget bounds how fast orders and returns go through


SUITE = Scale(
    orders=96, refunded=30, stores=3, skus=12, stock=(20, 30), within=180.0, plan="standard"
)
ISSUE = Scale(
    orders=860, refunded=300, stores=5, skus=40, stock=(40, 60), within=1_800.0, plan="plus"
)
SCALE = ISSUE if os.environ.get("TILLSYNC_RETURNS_SCALE") == "issue" else SUITE
ORDERS = SCALE.orders
REFUNDED = SCALE.refunded
BLIND = 4  # more, each returned with no receipt; its customer has no other order
PAIR = "pair@example.com"  # two more orders of one customer: a blind return fits both
RETURNED_WITHIN = SCALE.within


@dataclass
class Credit:
    """One return at a till, and what the rules say Shopify owes for it."""

    credit_id: int
    order_id: int | None  # the Shopify order; None for a till sale's return
    units: Counter[str]
    reason: str  # the Shopify reason its lines must carry
    restock_at: int | None  # the Shopify location its units are restocked at
    refund: Decimal  # money Shopify must pay back for it
    asked: int | None = None  # the return the customer asked for online, carried out instead


@dataclass(frozen=True)
class Over:
    """One sample of Shopify above the target, by the test's wall clock (the broker's too)."""

    at_ms: int
    position: tuple[str, int]  # (SKU, Shopify location)
    have: int
    want: int


@dataclass
class Ledger:
    credits: list[Credit] = field(default_factory=list)


@pytest.fixture
async def harness(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Harness]:
    low, high = SCALE.stock
    spec = NetworkSpec(
        stores=SCALE.stores, skus=SCALE.skus, buffer=1, min_stock=low, max_stock=high
    )
    env = {"TILLSYNC_RETURNS_TO_SHOPIFY": "true", "TILLSYNC_REFUNDS_TO_SITOO": "true"}
    async with started(kafka_bootstrap, spec, tmp_path, env=env, plan=SCALE.plan) as h:
        yield h


async def test_store_returns_reach_shopify_once_through_a_kill_and_a_replay(
    harness: Harness, kafka_bootstrap: str
) -> None:
    h = harness
    assert h.shopify is not None and h.sitoo is not None and h.network is not None
    shopify, sitoo = h.shopify.state, h.sitoo.state
    stores = h.network.stores
    skus = h.network.skus
    rng = random.Random(13)
    await converged(h, 60)
    # from here on Shopify sends some webhooks twice or out of order, Sitoo some events twice
    h.shopify.set_faults(webhook_duplicate_rate=0.05, webhook_reorder_rate=0.05)
    h.sitoo.set_faults(event_duplicate_rate=0.05)

    # -- online orders, picked up in store -----------------------------------------------------
    placed: list[tuple[int, int, str]] = []  # (Shopify order, store index, Sitoo externalid)
    emails = [None] * (ORDERS + REFUNDED) + [f"blind{b}@example.com" for b in range(BLIND)]
    emails += [PAIR, PAIR]
    for n, email in enumerate(emails):
        i = n % len(stores)
        lines = [(sku, rng.randint(1, 2)) for sku in rng.sample(skus, rng.randint(1, 3))]
        if n % 6 in (1, 4, 5):  # returned in part: a first line of two units
            lines[0] = (lines[0][0], 2)
        if email == PAIR:
            lines = [(skus[0], 1)]
        order = shopify.place_order(
            lines, location_id=stores[i].shopify_location_id, delivery="PICK_UP", email=email
        )
        [fo] = order.fulfillment_order_ids
        placed.append((order.id, i, f"fo-{fo}-{stores[i].shopify_location_id}"))

    async def all_in_sitoo() -> bool:
        found = [_sitoo_order(h, ext) for _, _, ext in placed]
        return all(f is not None and sitoo.orders[f].state == ORDER_OPEN for f in found)

    await async_wait_until(
        all_in_sitoo, RETURNED_WITHIN / 2, interval=0.5, what="every pickup in Sitoo"
    )
    originals = [await _sitoo_state(h, ext, ORDER_OPEN) for _, _, ext in placed]
    for made in originals:
        sitoo.collect(made)

    async def handed_over() -> bool:
        return all(
            all(
                shopify.fulfillment_orders[f].status == "CLOSED"
                for f in shopify.order(o).fulfillment_order_ids
            )
            for o, _, _ in placed
        )

    await async_wait_until(
        handed_over, RETURNED_WITHIN / 2, interval=0.25, what="every pickup fulfilled"
    )
    sales = [  # (Sitoo store, till sale)
        (
            stores[k % 3].sitoo_store_id,
            sitoo.till_sale(
                stores[k % 3].sitoo_store_id, [{"sku": skus[k], "quantity": 1}]
            ).orderid,
        )
        for k in range(4)
    ]
    # staff refund in Shopify's admin: restocked at the pickup's store, at another store, or
    # not at all; each restock is one Move In at that store in Sitoo, and each refund one credit
    # order against the Sitoo order the till handed over
    staff_restocks: dict[int, tuple[int, str, int]] = {}  # refund -> (warehouse, SKU, units)
    staff_credits: dict[str, tuple[int, str, Decimal]] = {}  # externalid -> (original, SKU, paid)

    def staff_refund(k: int) -> None:
        order_id, home, _ = placed[k]
        line = shopify.order(order_id).line_items[0]
        kind = k % 3
        store = stores[(home + kind) % len(stores)]
        if kind == 2:
            made = shopify.refund(order_id, [(line.id, 1, "NO_RESTOCK", None)])
        else:
            made = shopify.refund(order_id, [(line.id, 1, "RETURN", store.shopify_location_id)])
            staff_restocks[made.id] = (store.sitoo_warehouse_id, line.sku, 1)
        staff_credits[f"rc-{made.id}-{originals[k]}"] = (originals[k], line.sku, made.amount)

    # Shopify gives up on the last third's refunds/create: each reaches Sitoo all the same,
    # from the orders/updated that follows it (its body carries the order's refunds)
    lost_from = ORDERS + REFUNDED - REFUNDED // 3
    for k in range(ORDERS, ORDERS + REFUNDED):
        if k == lost_from:
            h.shopify.set_faults(webhook_lost_topics=["refunds/create"])
        staff_refund(k)
    h.shopify.set_faults(webhook_lost_topics=[])
    lost = [d for d in h.shopify.webhooks.deliveries if d.topic == "refunds/create" and d.gave_up]
    assert len(lost) == REFUNDED // 3
    # (before the watch below: a restock puts units in Shopify before Sitoo has them)
    await converged(h, RETURNED_WITHIN / 3)

    # -- Shopify never above Sitoo while the returns come in -------------------------------------
    over: list[Over] = []
    watching = True
    # positions of goods taken in an exchange: a sale at the till, which Shopify shows a moment
    # after Sitoo (the stock flow's latency); watched again once Shopify has caught up. One
    # taken while the worker is down waits until the worker has read past the outage: it
    # replays the ledger in order, so on the way Shopify shows the store's stock as it was
    # (before the sales of the outage) for a moment, as it did the whole outage long
    selling: set[tuple[str, int]] = set()
    down_selling: set[tuple[str, int]] = set()
    worker_down = False
    caught_up = False

    async def watch() -> None:
        while watching:
            want = expected_available(h.network, h.shopify, h.sitoo)  # type: ignore[arg-type]
            have = actual_available(h.network, h.shopify)  # type: ignore[arg-type]
            at_ms = int(time.time() * 1000)
            waiting = set() if caught_up else down_selling
            selling.difference_update({k for k in selling - waiting if have[k] <= want[k]})
            over.extend(
                Over(at_ms, k, have[k], v)
                for k, v in want.items()
                if have[k] > v and k not in selling
            )
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    booked_before = len(sitoo.transactions)
    ledger = Ledger()
    location_of = {s.sitoo_store_id: s.shopify_location_id for s in stores}

    def value(credit_id: int) -> Decimal:
        return -Decimal(str(sitoo.orders[credit_id].data["moneytotal_gross_all"]))

    exchanged: set[int] = set()  # Sitoo deliveries of goods taken in an exchange

    def give_back(
        k: int,
        at: int,
        rows: list[dict[str, object]] | None,
        code: str,
        payment: str,
        exchange: list[dict[str, Any]] | None = None,
    ) -> Credit:
        order_id, _, _ = placed[k]
        store = stores[at]
        credit = sitoo.till_return(
            store.sitoo_store_id,
            originals[k],
            rows,
            reasoncode=code,
            payment=payment,
            exchange=exchange,
        )
        if exchange:  # the credit order's own, or the new sale's (the newest order)
            sale = credit if payment != "virtual" else sitoo.orders[max(sitoo.orders)]
            exchanged.update(d.orderdeliveryid for d in sale.deliveries)
            taken = {(str(x["sku"]), store.shopify_location_id) for x in exchange}
            selling.update(taken)
            if worker_down:
                down_selling.update(taken)
        units: Counter[str] = Counter()
        for item in credit.product_items():
            if int(item["quantity"]) < 0:  # not the goods taken in exchange
                units[item["sku"]] -= int(item["quantity"])
        reason = {
            "SIZE-SMALL": "SIZE_TOO_SMALL",
            "DEFECT": "DEFECTIVE",
            "ODD-CODE": "OTHER",
            "": "UNKNOWN",
        }[code]
        restock = None if code == "DEFECT" else location_of[store.sitoo_store_id]
        refund = value(credit.orderid) if payment == "none" and not exchange else Decimal("0.00")
        made = Credit(credit.orderid, order_id, units, reason, restock, refund)
        ledger.credits.append(made)
        return made

    def ask_online(k: int) -> int:
        """The customer asks online for a return of all of order k."""
        order = shopify.order(placed[k][0])
        lines = [x for f in order.fulfillment_ids for x in shopify.fulfillments[f].line_ids]
        asks = [ReturnRequest(x, shopify.returnable(x), "STYLE") for x in lines]
        return shopify.request_return(order.id, asks).id

    def first_row(k: int, units: int = 1) -> list[dict[str, object]]:
        item = sitoo.orders[originals[k]].product_items()[0]
        return [{"orderitemid": int(item["orderitemid"]), "quantity": units}]

    def returns_batch(ks: range) -> None:
        for k in ks:
            home = placed[k][1]
            kind = k % 6
            other = [{"sku": skus[(k + 1) % len(skus)], "quantity": 1}]
            if kind == 0 and k % 12 == 6:  # all of it, for other goods on the same receipt
                give_back(k, home, None, "SIZE-SMALL", "card", other)
            elif kind == 0 and k % 24 == 0:  # asked for online first, brought to the store
                asked = ask_online(k)
                c = give_back(k, home, None, "SIZE-SMALL", "card")
                ledger.credits[-1] = replace(c, reason="STYLE", asked=asked)
            elif kind == 0:  # all of it, paid back at the till
                give_back(k, home, None, "SIZE-SMALL", "card")
            elif kind == 3 and k % 12 == 9:  # at another store, for goods of a new sale
                give_back(k, (home + 1) % len(stores), None, "SIZE-SMALL", "virtual", other)
            elif kind == 1:  # one unit, the money to go back to the card online
                give_back(k, home, first_row(k), "", "none")
            elif kind == 2:  # damaged
                give_back(k, home, None, "DEFECT", "card")
            elif kind == 3:  # at another store, to be refunded online
                give_back(k, (home + 1) % len(stores), None, "SIZE-SMALL", "none")
            elif kind == 4:  # a reason tillsync's table does not name
                give_back(k, home, first_row(k), "ODD-CODE", "cash")
            else:  # one unit, then the rest of everything later
                give_back(k, home, first_row(k), "", "none")
                give_back(k, home, None, "SIZE-SMALL", "none")

    def unit_price(k: int) -> Decimal:
        item = sitoo.orders[originals[k]].product_items()[0]
        gross = Decimal(item["moneyitemtotal_net"]) + Decimal(item["moneyitemtotal_vat"])
        return (gross / int(item["quantity"])).quantize(Decimal("0.01"))

    def blind_return(k: int, payment: str) -> int:
        """One unit of order k's first line back at its store with no receipt."""
        order_id, home, _ = placed[k]
        sku = sitoo.orders[originals[k]].product_items()[0]["sku"]
        credit = sitoo.blind_return(
            stores[home].sitoo_store_id,
            [{"sku": sku, "quantity": 1, "price": str(unit_price(k))}],
            email=shopify.order(order_id).email or "",
            reasoncode="SIZE-SMALL",
            payment=payment,
        )
        refund = value(credit.orderid) if payment == "none" else Decimal("0.00")
        restock = stores[home].shopify_location_id
        found = Credit(
            credit.orderid, order_id, Counter({sku: 1}), "SIZE_TOO_SMALL", restock, refund
        )
        if shopify.order(order_id).email != PAIR:
            ledger.credits.append(found)  # the pair's waits for its link
        return credit.orderid

    returns_batch(range(0, ORDERS // 2))
    for store_id, sale in sales[:2]:
        sitoo.till_return(store_id, sale)
    first_blind = ORDERS + REFUNDED
    for b in range(BLIND):
        blind_return(first_blind + b, "none" if b % 2 else "card")
    pair = (first_blind + BLIND, first_blind + BLIND + 1)
    queued = blind_return(pair[0], "card")

    async def all_returned() -> bool:
        return all(_shopify_has(shopify, c) for c in ledger.credits if c.order_id is not None)

    await async_wait_until(all_returned, RETURNED_WITHIN, interval=0.5, what="the first returns")

    # the pair's blind return fits both orders: it waits, an exception for store operations
    exceptions = topics.EXCEPTIONS.name(h.app_id)

    async def raised() -> bool:
        found = await records_naming(kafka_bootstrap, exceptions, f"sitoo-credit-order-{queued}")
        return any("return_blind" in str(seen.value) for seen in found)

    await async_wait_until(raised, 60, interval=0.5, what="the blind return queued")
    assert not any(shopify.returns_of(placed[k][0]) for k in pair)
    linked = await _tillsync(h, "returns", "link", str(queued), str(placed[pair[1]][0]))
    assert "linked:" in linked, linked
    ledger.credits.append(
        Credit(
            queued,
            placed[pair[1]][0],
            Counter({skus[0]: 1}),
            "SIZE_TOO_SMALL",
            stores[placed[pair[0]][1]].shopify_location_id,
            Decimal("0.00"),
        )
    )

    # SIGKILL: the whole process group, without a word; the tills go on
    assert h.worker is not None and h.worker.proc is not None
    os.killpg(h.worker.proc.pid, signal.SIGKILL)
    h.worker.proc.wait(10)
    worker_down = True
    returns_batch(range(ORDERS // 2, ORDERS))
    for store_id, sale in sales[2:]:
        sitoo.till_return(store_id, sale)
    h.start_worker()
    await h.wait_ready(timeout=120)
    back = time.monotonic()
    await async_wait_until(all_returned, RETURNED_WITHIN, interval=0.5, what="every return")
    caught_up = True  # every return of the outage is in Shopify: the worker read past it
    print(
        f"\nstore returns: {len(ledger.credits)} credit orders of {ORDERS} online orders, "
        f"{BLIND + 1} of them blind (one linked by hand), {len(sales)} till-sale returns, "
        f"{REFUNDED} staff refunds; the second half's "
        f"returns all in Shopify {time.monotonic() - back:.1f} s after the worker was ready"
    )

    # the whole raw orders topic again, and every Shopify webhook (the refunds' among them):
    # nothing more may happen
    replayed = await replay(kafka_bootstrap, topics.RAW_SITOO_ORDERS.name(h.app_id))
    webhooks = await replay(kafka_bootstrap, topics.RAW_SHOPIFY_WEBHOOKS.name(h.app_id))
    assert replayed > 0 and webhooks > 0
    await converged(h, RETURNED_WITHIN / 3)
    watching = False
    await watcher

    # -- the end state -----------------------------------------------------------------------
    # Sitoo's stock moved only by the tills' returns and exchanges and the staff refunds' Move
    # Ins
    others = [
        (tx.transactiontype, tx.externalid, tx.warehouseid, [(i.sku, i.quantity) for i in tx.items])
        for tx in sitoo.transactions[booked_before:]
        if tx.transactiontype != TRANSACTION_REFUND
        and not (tx.externalid or "").startswith("rf-")
        and tx.orderdeliveryid not in exchanged
    ]
    assert exchanged, "some returns were exchanges"
    assert others == [], f"Sitoo's stock moved while the returns came in: {others[:5]}"
    if over:
        first = over[0]
        told = await _history(kafka_bootstrap, h.app_id, first.position[0])
        pytest.fail(
            f"Shopify above Sitoo's target {len(over)} times, first: {first}; last: {over[-1]}"
            f"\nwhat the worker saw and did of {first.position[0]}:\n{told}"
        )
    dead = await count_records(kafka_bootstrap, topics.DEAD_LETTER.name(h.app_id))
    assert dead == 0, f"{dead} records dead-lettered"
    skus_of = {li.id: li.sku for o, _, _ in placed for li in shopify.order(o).line_items}
    by_order: dict[int, Decimal] = {}
    capped = 0  # resellable units not restocked in Shopify: no room there
    for c in ledger.credits:
        assert c.order_id is not None
        [ret] = _marked(shopify, c)
        assert ret.status == "CLOSED", c
        got: Counter[str] = Counter()
        for line in ret.lines:
            got[skus_of[line.line_item_id]] += line.quantity
            assert line.reason == c.reason, (c, line)
            if c.reason == "OTHER":
                assert "ODD-CODE" in line.reason_note
        assert got == c.units, c
        restocks = _dispositions(shopify, ret)
        if c.restock_at is None:
            assert {t for t, _, _ in restocks} == {"NOT_RESTOCKED"}, c
        else:
            # restocked where the till took them back; at a store with no room left in Shopify
            # (below its buffer: sold past its stock), the rest not restocked
            assert {(t, loc) for t, _, loc in restocks} <= {
                ("RESTOCKED", c.restock_at),
                ("NOT_RESTOCKED", None),
            }, c
            capped += sum(n for t, n, _ in restocks if t == "NOT_RESTOCKED")
        assert sum(n for _, n, _ in restocks) == sum(c.units.values())
        by_order[c.order_id] = by_order.get(c.order_id, Decimal("0.00")) + c.refund
    resellable = sum(sum(c.units.values()) for c in ledger.credits if c.restock_at is not None)
    print(
        f"resellable units returned: {resellable}, not restocked in Shopify for want of room: "
        f"{capped}"
    )
    assert capped < resellable / 4, "most returns find room in Shopify"
    for order_id, owed in by_order.items():
        order = shopify.order(order_id)
        assert shopify.refunded(order) == owed, order_id
        assert shopify.refunded(order) <= order.received()
    # only the credit orders of online orders became returns: one per credit order, no more
    assert sum(len(shopify.returns_of(o)) for o, _, _ in placed) == len(ledger.credits)
    # each staff refund restocked at a store is one Move In there, with its units
    moved_in: dict[str, list[tuple[int, str, int]]] = {}
    for tx in sitoo.transactions:
        if (tx.externalid or "").startswith("rf-"):
            rows = [(tx.warehouseid, i.sku, int(i.quantity)) for i in tx.items]
            moved_in.setdefault(tx.externalid or "", []).extend(rows)
    assert staff_restocks and moved_in == {
        f"rf-{r}-{w}": [(w, sku, n)] for r, (w, sku, n) in staff_restocks.items()
    }
    # each staff refund is one closed credit order against the Sitoo order handed over, its
    # line and the money Shopify paid back, no stock of its own; no return was made of it
    booked: dict[str, tuple[int, str, Decimal]] = {}
    for ext, orderid in sitoo.orders_by_externalid.items():
        if not ext.startswith("rc-"):
            continue
        credit = sitoo.orders[orderid]
        [item] = credit.product_items()
        assert int(item["quantity"]) == -1 and not credit.deliveries, ext
        paid = -sum((Decimal(p["moneyamount"]) for p in credit.data["payments"]), Decimal(0))
        booked[ext] = (credit.data["creditorderid"], item["sku"], paid)
    assert staff_credits and booked == staff_credits
    # and the till sales' returns stayed Sitoo's: their stock is in the positions above
    assert all(sitoo.returns_of.get(s) for _, s in sales)


async def _tillsync(h: Harness, *args: str) -> str:
    """A tillsync command as its own process, with the worker's settings; its output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tillsync.cli",
        *args,
        env={**os.environ, **h.worker_env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text
    return text


async def _history(bootstrap: str, app_id: str, sku: str) -> str:
    """The stock events, Shopify writes and drift of one SKU, oldest first."""
    seen = []
    for spec in (topics.STOCK_EVENTS, topics.SHOPIFY_INVENTORY_COMMANDS, topics.DRIFT):
        seen += await records_naming(bootstrap, spec.name(app_id), sku)
    seen.sort(key=lambda s: s.at_ms)
    return "\n".join(s.line() for s in seen)


def _marked(shopify: object, c: Credit) -> list[Any]:
    from tillsync_sim.shopify.state import ShopState

    assert isinstance(shopify, ShopState) and c.order_id is not None
    return [
        r
        for r in shopify.returns_of(c.order_id)
        if r.id == c.asked or any(marker(c.credit_id) in line.reason_note for line in r.lines)
    ]


def _shopify_has(shopify: object, c: Credit) -> bool:
    return [r.status for r in _marked(shopify, c)] == ["CLOSED"]


def _dispositions(shopify: object, ret: object) -> list[tuple[str, int, int | None]]:
    from tillsync_sim.shopify.state import ShopState

    assert isinstance(shopify, ShopState)
    rfo = shopify.reverse_fulfillment_orders[ret.rfo_id]  # type: ignore[attr-defined]
    return [(d.type, d.quantity, d.location_id) for line in rfo.lines for d in line.dispositions]
