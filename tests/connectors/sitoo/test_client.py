"""SitooClient against the simulator over real HTTP: paging, 429, 5xx, retried POSTs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from tillsync.connectors.outcomes import Outcome, WaitReason
from tillsync.connectors.retry import RetryPolicy
from tillsync.connectors.sitoo.client import SitooClient, SitooConfig, SitooError
from tillsync.schemas.settings import Settings
from tillsync.schemas.sitoo import WarehouseTransactionIn
from tillsync_sim.sitoo import SitooSimulator

from .conftest import StartSim, make_settings

FAST = RetryPolicy(attempts=6, base=0.01, cap=0.2)


def _config(settings: Settings, **kw: Any) -> SitooConfig:
    return replace(SitooConfig.from_settings(settings), retry=FAST, **kw)


@pytest.fixture
async def client(sim: SitooSimulator) -> AsyncIterator[SitooClient]:
    async with SitooClient(_config(sim.client_settings(), page_size=2)) as c:
        yield c


def _move_in(externalid: str | None = None) -> WarehouseTransactionIn:
    return WarehouseTransactionIn.model_validate(
        {
            "warehouseid": 1,
            "transactiontype": 10,
            "externalid": externalid,
            "items": [{"sku": "SKU-0004", "decimalquantity": "1.000"}],
        }
    )


def test_config_from_settings_keeps_the_password_out_of_its_repr() -> None:
    config = SitooConfig.from_settings(make_settings(sitoo_site_id=3))
    assert config.account_url.endswith("/v2/accounts/90001")
    assert config.site_id == 3 and config.requests_per_second == 1000.0
    assert "test-password" not in repr(config)


async def test_paging_iterator_reports_progress(client: SitooClient) -> None:
    progress: list[tuple[int, int]] = []
    rows = [
        r
        async for r in client.iter_warehouse_items(1, progress=lambda n, t: progress.append((n, t)))
    ]
    assert [r.sku for r in rows] == [f"SKU-{i:04d}" for i in range(1, 6)]
    assert progress == [(2, 5), (4, 5), (5, 5)]
    assert client.stats.calls == {Outcome.OK: 3}
    assert all(r.decimalavailable == r.decimaltotal for r in rows)


async def test_429_is_honoured_and_costs_no_attempt(sim: SitooSimulator) -> None:
    calls: list[tuple[str, str]] = []
    sim.set_faults(throttle_for_s=0.3)

    def on_call(platform: str, outcome: Outcome, seconds: float) -> None:
        calls.append((platform, outcome))

    config = replace(_config(sim.client_settings()), retry=replace(FAST, attempts=1))
    async with SitooClient(config, on_call=on_call) as c:
        rows = [r async for r in c.iter_warehouse_items(1)]
    assert len(rows) == 5
    assert calls == [("sitoo", "rate_limited"), ("sitoo", "ok")]
    # Retry-After: 1 (whole seconds, rounded up), waited in full although one attempt is all
    # the policy allows
    assert c.stats.waited[WaitReason.RETRY_AFTER] == 1.0
    assert c.stats.retries == 0


async def test_429_gives_up_after_its_budget(sim: SitooSimulator) -> None:
    sim.set_faults(throttle_for_s=60)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    config = _config(sim.client_settings(), max_rate_limited=3)
    async with SitooClient(config, sleep=sleep) as c:
        with pytest.raises(SitooError) as err:
            await c.request("GET", "/sites/1/stores.json")
    assert err.value.statuscode == 429 and err.value.retryable
    assert c.stats.calls == {Outcome.RATE_LIMITED: 4}
    assert len(waits) == 3


async def test_5xx_is_retried_with_backoff(sim: SitooSimulator, client: SitooClient) -> None:
    sim.set_faults(error_rate=0.5)
    rows = [r async for r in client.iter_warehouse_items(1)]
    assert len(rows) == 5
    assert client.stats.calls[Outcome.SERVER_ERROR] >= 1
    assert client.stats.retries == client.stats.calls[Outcome.SERVER_ERROR]
    sim.set_faults(error_rate=1.0)
    with pytest.raises(SitooError) as err:
        await client.request("GET", "/sites/1/stores.json")
    assert err.value.statuscode == 500 and err.value.retryable
    assert client.stats.calls[Outcome.SERVER_ERROR] >= FAST.attempts


async def test_errors_are_typed(client: SitooClient) -> None:
    with pytest.raises(SitooError) as err:
        await client.request("GET", "/sites/1/orders/424242.json")
    assert err.value.statuscode == 404 and "not found" in err.value.errortext
    assert not err.value.retryable
    assert client.stats.calls == {Outcome.CLIENT_ERROR: 1}


async def test_wrong_password_is_401(start_sim: StartSim) -> None:
    sim = await start_sim()
    bad = make_settings(sitoo_base_url=sim.base_url, sitoo_api_password="nope")
    async with SitooClient(SitooConfig.from_settings(bad)) as c:
        with pytest.raises(SitooError) as err:
            await c.request("GET", "/sites/1/stores.json")
    assert err.value.statuscode == 401
    assert c.stats.calls == {Outcome.UNAUTHORIZED: 1}


async def test_transactions_go_in_batches_of_1000(sim: SitooSimulator, client: SitooClient) -> None:
    results = await client.add_warehouse_transactions([_move_in(f"IN-{i}") for i in range(1200)])
    assert len(results) == 1200 and all(r.ok for r in results)
    assert client.stats.calls == {Outcome.OK: 2}
    found = await client.find_transactions_by_externalid(0, ["IN-7", "NOPE"])
    assert set(found) == {"IN-7"}


async def test_transactions_after_a_lost_answer_are_not_written_twice(
    sim: SitooSimulator, client: SitooClient
) -> None:
    # the first POST is processed but its answer is lost (500 after the write)
    original = sim.state.add_transaction
    calls = {"n": 0}

    def add_then_fail(body: Any) -> int:
        txid = original(body)
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("lost the answer")
        return txid

    sim.state.add_transaction = add_then_fail  # type: ignore[method-assign]
    [result] = await client.add_warehouse_transactions([_move_in("LOST-1")])
    assert calls["n"] == 1  # looked up after the failure, found, not sent again
    written = [t for t in sim.state.transactions if t.externalid == "LOST-1"]
    assert [t.warehousetransactionid for t in written] == [result.return_]
    assert client.stats.retries == 1


async def test_a_post_without_a_key_is_not_retried(
    sim: SitooSimulator, client: SitooClient
) -> None:
    sim.set_faults(error_rate=1.0)
    with pytest.raises(SitooError) as err:
        await client.add_warehouse_transactions([_move_in()])
    assert err.value.statuscode == 500
    assert client.stats.calls == {Outcome.SERVER_ERROR: 1}
    assert client.stats.retries == 0
