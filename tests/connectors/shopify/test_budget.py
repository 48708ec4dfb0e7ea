"""The cost bucket shared by priority, on a manual clock."""

from __future__ import annotations

import asyncio

import pytest

from tillsync.connectors.shopify.budget import CostBudget, Priority


class ManualClock:
    """Time moves only when a sleeper sleeps; sleepers wake in the order of their deadlines."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        until = self.now + seconds
        # let every other ready task run first, so arrivals "during" the sleep are seen
        for _ in range(5):
            await asyncio.sleep(0)
        self.now = max(self.now, until)


def status(available: float, rate: float = 100.0, maximum: float = 1000.0) -> dict[str, float]:
    return {"maximumAvailable": maximum, "currentlyAvailable": available, "restoreRate": rate}


async def test_a_call_the_bucket_can_pay_for_goes_at_once() -> None:
    clock = ManualClock()
    budget = CostBudget(clock=clock, sleep=clock.sleep)
    budget.observe(status(500))
    assert await budget.acquire(80, Priority.STOCK_WRITE) == 0.0
    assert budget.figures.available == pytest.approx(420)


async def test_an_unknown_bucket_or_cost_waits_for_nothing() -> None:
    clock = ManualClock()
    budget = CostBudget(clock=clock, sleep=clock.sleep)
    assert await budget.acquire(500, Priority.BACKGROUND) == 0.0
    budget.observe(status(0))
    assert await budget.acquire(None, Priority.BACKGROUND) == 0.0


async def test_the_head_waits_for_the_refill_it_needs() -> None:
    clock = ManualClock()
    budget = CostBudget(clock=clock, sleep=clock.sleep)
    budget.observe(status(10, rate=100))
    waited = await budget.acquire(60, Priority.STOCK_WRITE)
    assert waited == pytest.approx(0.5)
    assert budget.figures.available == pytest.approx(0)


async def test_order_state_goes_before_writes_and_writes_before_read_backs() -> None:
    clock = ManualClock()
    budget = CostBudget(clock=clock, sleep=clock.sleep)
    budget.observe(status(0, rate=100))
    done: list[str] = []

    async def call(name: str, cost: float, priority: Priority) -> None:
        await budget.acquire(cost, priority)
        done.append(name)

    tasks = [asyncio.create_task(call("read-back", 50, Priority.READ_BACK))]
    await asyncio.sleep(0)  # the read-back is at the head, waiting for its refill
    tasks += [
        asyncio.create_task(call("write-1", 50, Priority.STOCK_WRITE)),
        asyncio.create_task(call("write-2", 50, Priority.STOCK_WRITE)),
        asyncio.create_task(call("routing", 80, Priority.ORDER_STATE)),
        asyncio.create_task(call("reconcile", 50, Priority.BACKGROUND)),
    ]
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert done == ["routing", "write-1", "write-2", "read-back", "reconcile"]
    # 280 points at 100/s: nothing granted beyond what the bucket refilled
    assert clock.now == pytest.approx(2.8)
    assert budget.granted[Priority.ORDER_STATE] == 80
    assert budget.waiting == 0


async def test_a_cancelled_waiter_leaves_the_queue_and_the_next_goes() -> None:
    clock = ManualClock()
    budget = CostBudget(clock=clock, sleep=clock.sleep)
    budget.observe(status(0, rate=100))
    first = asyncio.create_task(budget.acquire(100, Priority.STOCK_WRITE))
    await asyncio.sleep(0)
    second = asyncio.create_task(budget.acquire(10, Priority.STOCK_WRITE))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 5) == pytest.approx(0.1, abs=0.05)
    assert budget.waiting == 0


async def test_a_write_waits_seconds_behind_a_burst_of_order_reads_not_the_whole_burst() -> None:
    clock = ManualClock()
    budget = CostBudget(clock=clock, sleep=clock.sleep, max_wait=2.0)
    budget.observe(status(0, rate=100))
    granted: dict[str, float] = {}

    async def call(name: str, priority: Priority) -> None:
        await budget.acquire(50, priority)
        granted[name] = clock.now

    write = asyncio.create_task(call("write", Priority.STOCK_WRITE))
    await asyncio.sleep(0)
    # a burst of order reads worth 10 s of the bucket, all more urgent than the write
    reads = [asyncio.create_task(call(f"read-{i}", Priority.ORDER_STATE)) for i in range(20)]
    await asyncio.wait_for(asyncio.gather(write, *reads), 5)
    # the write went once it had waited 2 s (the read being paid for then finishing first)
    assert 2.0 <= granted["write"] <= 2.5
    assert max(granted.values()) == pytest.approx(10.5)
    # without the limit it would have gone last
    assert sum(1 for t in granted.values() if t > granted["write"]) >= 15
