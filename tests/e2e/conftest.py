from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.waiting import async_wait_until
from tests.support.worker import REPO
from tillsync.schemas.settings import load_settings
from tillsync_sim.scenario.driver import mismatches
from tillsync_sim.scenario.harness import Harness
from tillsync_sim.scenario.network import NetworkSpec


@asynccontextmanager
async def started(
    kafka_bootstrap: str,
    spec: NetworkSpec,
    work: Path,
    *,
    plan: str = "standard",
    ready_timeout: float = 120.0,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Harness]:
    """Both simulators and worker processes (with ``env`` over the harness's own), ready;
    their log tails printed on failure."""
    os.environ["TILLSYNC_CONFIG"] = str(REPO / "config" / "demo.toml")
    h = Harness(
        load_settings(kafka_bootstrap=kafka_bootstrap),
        spec,
        work,
        plan=plan,
        worker_env=dict(env or {}),
    )
    await h.start_simulators()
    h.start_worker()
    for _ in range(workers - 1):
        h.add_worker()
    try:
        await h.wait_ready(timeout=ready_timeout)
        yield h
    except BaseException:
        for worker in h.workers:
            print(f"--- {worker.name} ---")
            print(worker.log_path.read_text(errors="replace")[-5000:])
        raise
    finally:
        await h.stop()


async def converged(h: Harness, timeout: float) -> None:
    """Wait until every position in Shopify equals its target; name a few that do not."""

    async def done() -> bool:
        return not mismatches(h.network, h.shopify, h.sitoo)  # type: ignore[arg-type]

    try:
        await async_wait_until(done, timeout, interval=0.25, what="Shopify to equal the targets")
    except AssertionError:
        off = mismatches(h.network, h.shopify, h.sitoo)  # type: ignore[arg-type]
        raise AssertionError(f"{len(off)} positions differ, e.g. {list(off.items())[:5]}") from None
