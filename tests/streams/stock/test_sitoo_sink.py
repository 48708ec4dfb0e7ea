"""The Sitoo stock sink's Move Outs, against a fake Sitoo: no HTTP, no Kafka."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tillsync.connectors.sitoo.client import SitooError
from tillsync.schemas.events import ExceptionRecord, Owner
from tillsync.schemas.sitoo import BatchResult, WarehouseTransactionIn, WarehouseTransactionItemIn
from tillsync.streams.stock.orders import MOVE_OUT
from tillsync.streams.stock.refs import fulfilment_external_id
from tillsync.streams.stock.sitoo_sink import LOOKBACK, POSTING, MoveOut, SitooMoveOutSink, Step

NOW = 1_700_000_000.5


@dataclass
class FakeSitoo:
    """Sitoo's ledger of warehouse transactions; answers may be scripted ahead of it."""

    ledger: dict[str, int] = field(default_factory=dict)  # externalid -> transaction id
    scripted: list[list[BatchResult] | Exception] = field(default_factory=list)
    posts: list[list[WarehouseTransactionIn]] = field(default_factory=list)
    searches: list[tuple[int, list[str]]] = field(default_factory=list)

    async def add_warehouse_transactions(
        self, transactions: Sequence[WarehouseTransactionIn]
    ) -> list[BatchResult]:
        self.posts.append(list(transactions))
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
        return {e: self.ledger[e] for e in wanted if e in self.ledger}


@dataclass
class RecordingOutput:
    dead: list[tuple[bytes, str, bytes | None]] = field(default_factory=list)
    exceptions: list[ExceptionRecord] = field(default_factory=list)

    async def dead_letter(self, value: bytes, reason: str, key: bytes | None = None) -> None:
        self.dead.append((value, reason, key))

    async def exception(self, record: ExceptionRecord) -> None:
        self.exceptions.append(record)


@dataclass
class Harness:
    sitoo: FakeSitoo
    applied: defaultdict[str, int]
    output: RecordingOutput
    nudge: asyncio.Event
    sink: SitooMoveOutSink


def harness(sitoo: FakeSitoo | None = None) -> Harness:
    sitoo = sitoo or FakeSitoo()
    applied: defaultdict[str, int] = defaultdict(int)
    output = RecordingOutput()
    nudge = asyncio.Event()
    sink = SitooMoveOutSink(sitoo, applied, output, nudge, clock=lambda: NOW)
    return Harness(sitoo, applied, output, nudge, sink)


def move_out(order: int = 1, fulfilment: int = 2, sku: str = "SKU", units: int = 1) -> MoveOut:
    tx = WarehouseTransactionIn(
        warehouseid=101,
        transactiontype=MOVE_OUT,
        items=[WarehouseTransactionItemIn(sku=sku, decimalquantity=f"{-units}.000")],
        description=f"Shopify order {order} fulfilled from store",
        externalid=fulfilment_external_id(order, fulfilment),
    )
    return MoveOut(tx, tx.model_dump_json().encode())


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


async def test_a_repeat_of_a_written_externalid_is_not_posted_again() -> None:
    h = harness()
    cmd = move_out()
    await h.sink.write([cmd])

    await h.sink.write([cmd, move_out()])

    assert len(h.sitoo.posts) == 1
    assert h.sink.stats.duplicates == 2
    assert h.applied["sf-1-2"] == 500


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


async def test_a_failed_post_is_dead_lettered_raised_and_searched_for_before_the_next_try() -> None:
    h = harness(FakeSitoo(scripted=[[BatchResult(statuscode=400, errortext="unknown sku")]]))
    cmd = move_out()

    await h.sink.write([cmd])

    reason = str(SitooError(400, "unknown sku"))
    assert h.output.dead == [(cmd.raw, reason, None)]
    [record] = h.output.exceptions
    assert (record.type, record.owner, record.key, record.at) == (
        "sitoo_stock_write_failed",
        Owner.STORE_OPS,
        "sf-1-2",
        NOW,
    )
    assert record.message == f"could not write sf-1-2 to Sitoo warehouse 101: {reason}"
    assert h.applied["sf-1-2"] == POSTING
    assert not h.nudge.is_set()

    await h.sink.write([cmd])

    assert len(h.sitoo.searches) == 1
    assert len(h.sitoo.posts) == 2
    assert h.applied["sf-1-2"] == 500


async def test_an_error_or_an_empty_answer_from_sitoo_fails_the_command_not_the_batch() -> None:
    h = harness(FakeSitoo(scripted=[SitooError(503, "unavailable"), []]))

    await h.sink.write([move_out(1, 1), move_out(2, 2), move_out(3, 3)])

    assert [reason for _, reason, _ in h.output.dead] == [
        str(SitooError(503, "unavailable")),
        str(SitooError(0, "no answer")),
    ]
    assert dict(h.applied) == {"sf-1-1": POSTING, "sf-2-2": POSTING, "sf-3-3": 500}
    assert h.sink.stats.failed == 2


def test_the_applied_state_decides_the_step() -> None:
    assert SitooMoveOutSink.step(0) is Step.POST
    assert SitooMoveOutSink.step(POSTING) is Step.LOOK_FIRST
    assert SitooMoveOutSink.step(42) is Step.SKIP
    # a transaction Sitoo gave no id for is still recorded as written
    assert SitooMoveOutSink.recorded(0) == 1
    assert SitooMoveOutSink.posted([BatchResult(statuscode=200, return_=True)]) == 1
