"""The backlog's superseding: a newer version replaces the older one's work and acknowledges
its records at once, unless the writer's merge keeps the older work; then the older records
wait for it, so a replay after a crash still finds a record that asks for it."""

from __future__ import annotations

from tillsync.streams.stock.backlog import Backlog


def _keep_collect(older: str, newer: str) -> str:
    return older if newer == "parcel" and older != "parcel" else newer


async def test_a_newer_version_supersedes_and_acknowledges_the_older_records() -> None:
    backlog: Backlog[str, str, str] = Backlog(capacity=10)
    assert backlog.add("order-1", 1, "ready", "r1") == []
    assert backlog.add("order-1", 2, "collect", "r2", _keep_collect) == ["r1"]
    [taken] = backlog.take(1)
    assert (taken.version, taken.work) == (2, "collect")
    assert backlog.done("order-1", 2) == ["r2"]


async def test_older_work_kept_by_the_merge_keeps_its_records_until_it_is_done() -> None:
    backlog: Backlog[str, str, str] = Backlog(capacity=10)
    backlog.add("order-1", 1, "collect", "r1")
    # the parcel's record comes after the collect's: the collect goes on, and its record is
    # not acknowledged before the collect is carried out
    assert backlog.add("order-1", 2, "parcel", "r2", _keep_collect) == []
    [taken] = backlog.take(1)
    assert (taken.version, taken.work) == (2, "collect")
    assert backlog.done("order-1", 2) == ["r1", "r2"]


async def test_a_merge_while_the_older_work_is_carried_out_runs_it_again() -> None:
    backlog: Backlog[str, str, str] = Backlog(capacity=10)
    backlog.add("order-1", 1, "collect", "r1")
    [first] = backlog.take(1)
    backlog.add("order-1", 2, "parcel", "r2", _keep_collect)
    assert backlog.done("order-1", first.version) == []  # a newer version waits: none yet
    [again] = backlog.take(1)
    assert (again.version, again.work) == (2, "collect")
    assert backlog.done("order-1", 2) == ["r1", "r2"]
