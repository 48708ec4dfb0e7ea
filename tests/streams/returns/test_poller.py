"""The orders poller's reading of Sitoo's orders: only returns go on, keyed by what they
return, each with its credit order as read; a crash between the poll and the hand-off reads a
page again and never skips one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from tillsync.schemas.events import StoreReturn
from tillsync.schemas.sitoo import WarehouseTransaction
from tillsync.streams import topics
from tillsync.streams.returns.poller import (
    CURSOR_KEY,
    RECORD_BYTES,
    OrdersRead,
    SitooOrdersPoller,
    is_return,
    returns_of,
)
from tillsync.streams.stock.ledger import levels_of


def test_a_credit_order_or_goods_coming_back_is_a_return_a_sale_is_not() -> None:
    sale = {"orderid": 1, "orderitems": [{"sku": "A", "quantity": 2}]}
    linked = {"orderid": 2, "creditorderid": 1, "orderitems": [{"sku": "A", "quantity": -1}]}
    blind = {"orderid": 3, "orderitems": [{"sku": "A", "quantity": -1}]}
    assert [is_return(o) for o in (sale, linked, blind)] == [False, True, True]


def test_each_return_goes_on_with_what_it_returns_and_itself() -> None:
    linked = {"orderid": 2, "creditorderid": 1, "orderitems": [{"sku": "A", "quantity": -1}]}
    blind = {"orderid": 3, "orderitems": [{"sku": "A", "quantity": -1}]}
    found = returns_of(OrdersRead(cursor=3, orders=[linked, blind]))
    assert [(r.credit_order_id, r.original_order_id) for r in found] == [(2, 1), (3, None)]
    assert found[0].credit == linked


def test_the_ledger_names_a_returns_delivery_only_while_the_returns_flow_runs() -> None:
    tx = WarehouseTransaction.model_validate(
        {
            "warehousetransactionid": 9,
            "warehouseid": 101,
            "transactiontype": 40,
            "orderdeliveryid": 555,
            "items": [{"sku": "A", "decimalquantity": "1.000", "decimaltotal": "11.000"}],
        }
    )
    [on], _ = levels_of(tx, 1.0, returns=True)
    [off], _ = levels_of(tx, 1.0)
    assert on.return_delivery_id == 555 and off.return_delivery_id is None
    sale = tx.model_copy(update={"transactiontype": 20})
    [level], _ = levels_of(sale, 1.0, returns=True)
    assert level.return_delivery_id is None


# -- a crash between the poll and the hand-off ---------------------------------------------------


class FakeSitoo:
    """Sitoo's orders, by id, answering the poller's one query."""

    def __init__(self, orders: list[dict[str, Any]]) -> None:
        self.orders = orders

    async def request(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        assert (method, path) == ("GET", "/orders.json")
        if params.get("sort") == "-orderid":
            return {"items": sorted(self.orders, key=lambda o: -o["orderid"])[:1]}
        first = int(params["orderidfrom"])
        found = sorted(
            (o for o in self.orders if o["orderid"] >= first), key=lambda o: o["orderid"]
        )
        return {"items": found[: int(params["num"])]}


@dataclass
class Kafka:
    """What the worker sent, by topic; ``down`` makes the next send fail (a crash midway)."""

    sent: dict[str, list[bytes]] = field(default_factory=dict)
    down: bool = False

    async def send_all(
        self, spec: topics.TopicSpec, records: Iterable[tuple[bytes | None, bytes]], **_: Any
    ) -> None:
        if self.down:
            raise ConnectionError("the worker died here")
        self.sent.setdefault(spec.name("t"), []).extend(value for _, value in records)


@dataclass
class Event:
    value: bytes


class Stream:
    def __init__(self, values: list[bytes]) -> None:
        self.values = values

    async def events(self) -> AsyncIterator[Event]:
        for v in self.values:
            yield Event(v)


def _poller(sitoo: FakeSitoo, kafka: Kafka, table: dict[str, int]) -> SitooOrdersPoller:
    """A worker's poller that owns the poll, on fakes (a fresh one is a restarted worker)."""
    raw = topics.RAW_SITOO_ORDERS.name("t")
    app = SimpleNamespace(
        assignor=SimpleNamespace(assigned_actives=lambda: {TP(raw, 0)}),
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=asyncio.Event())),
    )
    app.tables.recovery.completed.set()
    ctx = SimpleNamespace(
        runtime=SimpleNamespace(sitoo=sitoo),
        app=app,
        settings=SimpleNamespace(app_id="t"),
        send_all=kafka.send_all,
    )
    return SitooOrdersPoller(ctx, table)  # type: ignore[arg-type]


def _reads(kafka: Kafka) -> list[OrdersRead]:
    raw = topics.RAW_SITOO_ORDERS.name("t")
    return [OrdersRead.model_validate_json(v) for v in kafka.sent.get(raw, [])]


async def test_a_crash_before_the_hand_off_reads_the_page_again_and_skips_no_return() -> None:
    """The cursor moves only once a read's returns are in ``sitoo.returns``: a worker killed
    after the poll sent its read, or midway through handing it on, polls from the old cursor
    again after its restart. The returns come twice (the writer does each once), none is lost."""
    sitoo = FakeSitoo(
        [
            {"orderid": 1, "orderitems": [{"sku": "A", "quantity": 1}]},
            {"orderid": 2, "orderitems": [{"sku": "A", "quantity": 1}]},
            {"orderid": 3, "creditorderid": 1, "orderitems": [{"sku": "A", "quantity": -1}]},
            {"orderid": 4, "creditorderid": 2, "orderitems": [{"sku": "A", "quantity": -1}]},
        ]
    )
    kafka, table = Kafka(), {CURSOR_KEY: 1}
    await _poller(sitoo, kafka, table).poll_once()
    [read] = _reads(kafka)
    assert (read.cursor, [o["orderid"] for o in read.orders]) == (4, [3, 4])
    # killed before the agent took the read: the cursor is where it was, the page read again
    assert table[CURSOR_KEY] == 1
    restarted = _poller(sitoo, kafka, table)
    await restarted.poll_once()
    assert [r.model_dump() for r in _reads(kafka)] == [read.model_dump()] * 2
    # killed as the agent handed the returns on: the cursor stays, the read is taken again
    value = read.model_dump_json().encode()
    kafka.down = True
    with pytest.raises(ConnectionError):
        await restarted.take(Stream([value]))  # type: ignore[arg-type]
    assert table[CURSOR_KEY] == 1
    kafka.down = False
    await restarted.take(Stream([value, value]))  # type: ignore[arg-type]
    handed = kafka.sent[topics.SITOO_RETURNS.name("t")]
    assert [StoreReturn.model_validate_json(v).credit_order_id for v in handed] == [3, 4, 3, 4]
    assert table[CURSOR_KEY] == 4
    # and the next poll starts after it
    await _poller(sitoo, kafka, table).poll_once()
    assert len(_reads(kafka)) == 2


async def test_a_page_of_returns_too_big_for_one_record_goes_in_several() -> None:
    """At the issue's scale a page of 500 returns was 1.2 MB, over Kafka's 1 MB a request: the
    poll failed for ever and no return went on. Each read now stays under ``RECORD_BYTES``; its
    cursor is its newest return's id, the last one's the page's newest id (sales after the
    last return included), so handing them on in turn never skips one."""
    rows = [{"sku": f"SKU-{n:03d}", "quantity": -1, "name": "x" * 200} for n in range(20)]
    orders = [{"orderid": 1, "orderitems": [{"sku": "A", "quantity": 1}]}]
    orders += [{"orderid": n, "creditorderid": 1, "orderitems": rows} for n in range(2, 402)]
    orders.append({"orderid": 402, "orderitems": [{"sku": "A", "quantity": 1}]})  # a sale
    kafka, table = Kafka(), {CURSOR_KEY: 1}
    await _poller(FakeSitoo(orders), kafka, table).poll_once()
    raw = kafka.sent[topics.RAW_SITOO_ORDERS.name("t")]
    assert len(raw) > 1 and all(len(v) <= RECORD_BYTES for v in raw)
    reads = _reads(kafka)
    assert [o["orderid"] for r in reads for o in r.orders] == list(range(2, 402))
    assert [r.cursor for r in reads[:-1]] == [r.orders[-1]["orderid"] for r in reads[:-1]]
    assert reads[-1].cursor == 402
