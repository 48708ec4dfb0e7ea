"""The Sitoo stock sink's Move Outs, against a fake Sitoo: no HTTP, no Kafka."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import pytest

from tillsync.connectors.sitoo.client import SitooError
from tillsync.schemas.events import ExceptionRecord, Owner
from tillsync.schemas.sitoo import BatchResult, WarehouseTransactionIn, WarehouseTransactionItemIn
from tillsync.streams import metrics
from tillsync.streams.stock.sink_breaker import BreakerReport
from tillsync.streams.stock.sink_runner import BackloggedSink, SinkRunner
from tillsync.streams.stock.sitoo_sink import (
    LOOKBACK,
    MAX_SURPRISES,
    POSTING,
    SKEW,
    MoveOut,
    SitooMoveOutSink,
    Step,
)

from . import test_shopify_sink as shopify_tests
from .sink_fakes import Acks, ManualClock, breaker, event, until

NOW = 1_700_000_000.5
INTENT = -int(NOW)  # the applied state while a write begun now is not known to have landed
MOVE_OUT = 20


@dataclass
class FakeSitoo:
    """Sitoo's ledger of warehouse transactions; answers may be scripted ahead of it."""

    ledger: dict[str, int] = field(default_factory=dict)  # externalid -> transaction id
    scripted: list[list[BatchResult] | Exception] = field(default_factory=list)
    down: bool = False  # every call fails as Sitoo's own failure, after the client's retries
    posts: list[list[WarehouseTransactionIn]] = field(default_factory=list)
    searches: list[tuple[int, list[str]]] = field(default_factory=list)

    async def add_warehouse_transactions(
        self, transactions: Sequence[WarehouseTransactionIn]
    ) -> list[BatchResult]:
        self.posts.append(list(transactions))
        if self.down:
            raise SitooError(503, "unavailable")
        if self.scripted:
            answer = self.scripted.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        out = []
        for tx in transactions:
            self.ledger[tx.externalid or ""] = 500 + len(self.ledger)
            out.append(BatchResult(statuscode=200, return_=self.ledger[tx.externalid or ""]))
        return out

    async def find_transactions_by_externalid(
        self, since: int, externalids: Iterable[str]
    ) -> dict[str, int]:
        wanted = list(externalids)
        self.searches.append((since, wanted))
        if self.down:
            raise SitooError(0, "connection refused")
        return {e: self.ledger[e] for e in wanted if e in self.ledger}


@dataclass
class RecordingOutput:
    dead: list[tuple[bytes, str, bytes | None, Mapping[str, bytes]]] = field(default_factory=list)
    exceptions: list[ExceptionRecord] = field(default_factory=list)

    async def dead_letter(
        self,
        value: bytes,
        reason: str,
        key: bytes | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> None:
        self.dead.append((value, reason, key, dict(headers or {})))

    async def exception(self, record: ExceptionRecord) -> None:
        self.exceptions.append(record)


@dataclass
class Harness:
    sitoo: FakeSitoo
    applied: defaultdict[str, int]
    output: RecordingOutput
    nudge: asyncio.Event
    sink: SitooMoveOutSink
    acks: Acks
    report: BreakerReport


def harness(sitoo: FakeSitoo | None = None) -> Harness:
    sitoo = sitoo or FakeSitoo()
    applied: defaultdict[str, int] = defaultdict(int)
    output = RecordingOutput()
    nudge = asyncio.Event()
    acks = Acks()
    clock = ManualClock()
    report = BreakerReport(wall_clock=clock)
    sink = SitooMoveOutSink(
        sitoo,
        applied,
        output,
        nudge,
        breaker=breaker(metrics.Platform.SITOO, clock, report),
        ack=acks,
        clock=lambda: NOW,
    )
    return Harness(sitoo, applied, output, nudge, sink, acks, report)


def move_out(order: int = 1, fulfilment: int = 2, sku: str = "SKU", units: int = 1) -> MoveOut:
    tx = WarehouseTransactionIn(
        warehouseid=101,
        transactiontype=MOVE_OUT,
        items=[WarehouseTransactionItemIn(sku=sku, decimalquantity=f"{-units}.000")],
        description=f"Shopify order {order} fulfilled from store",
        externalid=f"sf-{order}-{fulfilment}",
    )
    raw = tx.model_dump_json().encode()
    headers = {"x-order": str(order).encode()}
    return MoveOut(tx, raw, event(raw, headers=headers), headers)


async def test_each_command_is_posted_as_one_move_out_with_its_externalid() -> None:
    h = harness()
    first, second = move_out(1, 2), move_out(3, 4, sku="OTHER", units=2)

    await h.sink.write([first, second])

    assert h.sitoo.posts == [[first.transaction], [second.transaction]]
    posted = [p[0] for p in h.sitoo.posts]
    assert [tx.externalid for tx in posted] == ["sf-1-2", "sf-3-4"]
    assert {tx.transactiontype for tx in posted} == {MOVE_OUT}
    # the transaction id Sitoo gave is recorded per externalid
    assert dict(h.applied) == {"sf-1-2": 500, "sf-3-4": 501}
    assert h.nudge.is_set()
    assert h.sink.stats.posted == 2
    assert h.sitoo.searches == []
    assert h.acks.events == [first.event, second.event]


async def test_a_repeat_of_a_written_externalid_is_not_posted_again() -> None:
    h = harness()
    cmd = move_out()
    await h.sink.write([cmd])

    again = [cmd, move_out()]
    await h.sink.write(again)

    assert len(h.sitoo.posts) == 1
    assert h.sink.stats.duplicates == 2
    assert h.applied["sf-1-2"] == 500
    assert h.acks.events == [cmd.event, again[0].event, again[1].event]


async def test_after_a_crash_mid_write_the_ledger_is_searched_and_a_landed_write_kept() -> None:
    sitoo = FakeSitoo(ledger={"sf-1-2": 777})
    h = harness(sitoo)
    h.applied["sf-1-2"] = POSTING  # the intent was recorded, the id never was

    await h.sink.write([move_out()])

    assert sitoo.searches == [(int(NOW) - LOOKBACK, ["sf-1-2"])]
    assert sitoo.posts == []
    assert h.applied["sf-1-2"] == 777
    assert h.sink.stats.found == 1
    assert not h.nudge.is_set()


async def test_after_a_crash_mid_write_a_write_that_did_not_land_is_posted() -> None:
    h = harness()
    h.applied["sf-1-2"] = POSTING

    await h.sink.write([move_out()])

    assert len(h.sitoo.searches) == 1
    assert len(h.sitoo.posts) == 1
    assert h.applied["sf-1-2"] == 500


async def test_a_write_begun_long_ago_is_searched_for_from_when_it_began() -> None:
    # the intent was recorded before a Sitoo outage of hours: the search reaches back to it
    began = int(NOW) - 5 * 3600
    sitoo = FakeSitoo(ledger={"sf-1-2": 777})
    h = harness(sitoo)
    h.applied["sf-1-2"] = -began

    await h.sink.write([move_out()])

    assert sitoo.searches == [(began - SKEW, ["sf-1-2"])]
    assert sitoo.posts == []
    assert h.applied["sf-1-2"] == 777


async def test_a_move_out_sitoo_refuses_is_dead_lettered_with_its_headers() -> None:
    h = harness(FakeSitoo(scripted=[[BatchResult(statuscode=400, errortext="unknown sku")]]))
    cmd = move_out()

    await h.sink.write([cmd])

    reason = str(SitooError(400, "unknown sku"))
    assert h.output.dead == [(cmd.raw, reason, None, {"x-order": b"1"})]
    [record] = h.output.exceptions
    assert (record.type, record.owner, record.key, record.at) == (
        "sitoo_stock_write_failed",
        Owner.STORE_OPS,
        "sf-1-2",
        NOW,
    )
    assert record.message == f"could not write sf-1-2 to Sitoo warehouse 101: {reason}"
    # the intent stays: a repeat of the command searches the ledger before it posts
    assert h.applied["sf-1-2"] == INTENT
    assert not h.nudge.is_set()
    assert h.acks.events == [cmd.event]
    assert h.sink.breaker.failures == 0

    [again] = [move_out()]
    await h.sink.write([again])

    assert len(h.sitoo.searches) == 1
    assert len(h.sitoo.posts) == 2
    assert h.applied["sf-1-2"] == 500


async def test_a_failure_of_sitoo_itself_is_tried_again_and_written_once() -> None:
    h = harness(FakeSitoo(scripted=[SitooError(503, "unavailable"), []]))
    cmds = [move_out(1, 1), move_out(2, 2), move_out(3, 3)]

    await h.sink.write(cmds)

    # nothing dead-lettered: both failures were Sitoo's (a 503, a batch without an answer)
    assert not h.output.dead and not h.output.exceptions
    assert h.sink.stats.retried == 2
    assert h.applied == {"sf-1-1": 500, "sf-2-2": 501, "sf-3-3": 502}
    # a write whose answer never came was searched for in the ledger before it went again
    assert [ids for _, ids in h.sitoo.searches] == [["sf-1-1"], ["sf-1-1"]]
    assert len(h.sitoo.posts) == 5
    assert sorted(h.sitoo.ledger) == ["sf-1-1", "sf-2-2", "sf-3-3"]
    assert set(h.acks.events) == {c.event for c in cmds}


async def test_an_outage_holds_the_move_outs_and_writes_each_once_when_sitoo_returns() -> None:
    h = harness(FakeSitoo(down=True))
    writer = asyncio.create_task(h.sink.run_writer())
    try:
        cmds = [move_out(1, 1), move_out(2, 2)]
        await h.sink.accept(cmds)
        await until(lambda: h.sink.breaker.is_open, "the breaker to open")
        await h.sink.accept([move_out(1, 1)])  # a replay of one: the same Move Out
        await until(lambda: len(h.sitoo.posts) + len(h.sitoo.searches) > 10, "probes")
        assert len(h.sink.backlog) == 2
        assert h.acks.events == [] and not h.output.dead

        h.sitoo.down = False
        await until(lambda: len(h.sink.backlog) == 0, "the backlog to drain")
    finally:
        writer.cancel()

    assert sorted(h.sitoo.ledger) == ["sf-1-1", "sf-2-2"]
    assert not h.output.dead and not h.output.exceptions
    assert len(h.acks.events) == 3
    assert len(h.report.lines) == 2


class FlakyTable(dict[str, int]):
    """The applied table whose writes fail a number of times first (as a Faust table does
    while its changelog topic is missing from the consumer's metadata)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def __getitem__(self, key: str) -> int:
        return self.get(key, 0)

    def __setitem__(self, key: str, value: int) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("changelog topic has 0 partitions")
        super().__setitem__(key, value)


async def test_a_surprise_puts_the_move_out_back_and_it_is_written_on_a_later_try() -> None:
    h = harness()
    h.sink.applied = FlakyTable(failures=2)
    cmd = move_out()
    await h.sink.accept([cmd])

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await h.sink.write_round()
        assert h.sink.backlog.ready()  # back in the backlog, not stuck in flight

    await h.sink.write_round()

    assert h.sink.applied["sf-1-2"] == 500
    assert h.acks.events == [cmd.event] and not h.output.dead


async def test_a_move_out_that_keeps_failing_unexpectedly_is_dead_lettered() -> None:
    h = harness()
    h.sink.applied = FlakyTable(failures=MAX_SURPRISES)
    cmd = move_out()
    await h.sink.accept([cmd])

    for _ in range(MAX_SURPRISES - 1):
        with pytest.raises(RuntimeError):
            await h.sink.write_round()
    await h.sink.write_round()

    [(raw, reason, _, headers)] = h.output.dead
    assert (raw, headers) == (cmd.raw, {"x-order": b"1"})
    assert reason.startswith(f"unexpected error {MAX_SURPRISES} times: RuntimeError")
    assert h.acks.events == [cmd.event] and len(h.sink.backlog) == 0


def test_the_applied_state_decides_the_step() -> None:
    assert SitooMoveOutSink.step(0) is Step.POST
    assert SitooMoveOutSink.step(POSTING) is Step.LOOK_FIRST
    assert SitooMoveOutSink.step(SitooMoveOutSink.intent(NOW)) is Step.LOOK_FIRST
    assert SitooMoveOutSink.step(42) is Step.SKIP
    # an intent without a time is searched for over the last hour
    assert SitooMoveOutSink.search_from(POSTING, NOW) == int(NOW) - LOOKBACK
    # a transaction Sitoo gave no id for is still recorded as written
    assert SitooMoveOutSink.recorded(0) == 1
    assert SitooMoveOutSink.posted([BatchResult(statuscode=200, return_=True)]) == 1


# -- one platform's outage ---------------------------------------------------------------------


async def test_a_shopify_outage_does_not_hold_up_the_move_outs() -> None:
    shopify = shopify_tests.harness(
        shopify_tests.FakeShopify(
            levels={(shopify_tests.ITEM, shopify_tests.LOCATION): 5}, down=True
        )
    )
    sitoo = harness()
    writers = [
        asyncio.create_task(shopify.sink.run_writer()),
        asyncio.create_task(sitoo.sink.run_writer()),
    ]
    try:
        held = shopify_tests.received(shopify_tests.command(1, 8, 5))
        await shopify.sink.accept(held)
        await until(lambda: shopify.sink.breaker.is_open, "Shopify's breaker to open")

        moves = [move_out(1, 1), move_out(2, 2, sku="OTHER")]
        await sitoo.sink.accept(moves)  # the agents go on taking while Shopify is down
        await until(lambda: len(sitoo.acks.events) == 2, "the Move Outs to be written")

        assert sorted(sitoo.sitoo.ledger) == ["sf-1-1", "sf-2-2"]
        assert shopify.sink.holding() == 1 and shopify.acks.events == []
        assert shopify.sink.breaker.is_open and not sitoo.sink.breaker.is_open

        shopify.shopify.down = False
        await until(lambda: shopify.sink.holding() == 0, "Shopify's backlog to drain")
        assert shopify.acks.events == [held[0].event]
    finally:
        for task in writers:
            task.cancel()


@dataclass
class FakeHeldSink:
    held: int = 3
    released: int = 0

    def holding(self) -> int:
        return self.held

    def release(self) -> None:
        self.released += 1
        self.held = 0


async def test_the_runner_forgets_the_backlog_when_faust_stops_the_flow() -> None:
    sink = FakeHeldSink()
    flowing = [True]
    runner = SinkRunner(
        cast(BackloggedSink, sink), window=10, within=0.01, flowing=lambda: flowing[0], poll=0.001
    )
    watcher = asyncio.create_task(runner.watch())
    try:
        await asyncio.sleep(0.01)
        assert sink.released == 0
        flowing[0] = False  # a rebalance or a stop: Faust waits for every record to be acked
        await until(lambda: sink.released == 1, "the backlog to be released")
    finally:
        watcher.cancel()
