"""Everything a demo, an end-to-end test or a benchmark runs: both simulators in this process
(served over real HTTP), a seeded store network on them, and a tillsync worker as a process of
its own, wired to each other the way a real deployment is."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tillsync.schemas.settings import Settings
from tillsync_sim.procs import Child, free_port
from tillsync_sim.scenario.network import Network, NetworkSpec, build
from tillsync_sim.shopify import ShopifySimulator
from tillsync_sim.sitoo import SitooSimulator


@dataclass
class Harness:
    settings: Settings
    spec: NetworkSpec
    work_dir: Path
    app_id: str = field(default_factory=lambda: f"ts{uuid.uuid4().hex[:8]}")
    partitions: int = 4
    plan: str = "standard"
    sitoo_rate: float = 0.0
    worker_env: dict[str, str] = field(default_factory=dict)
    shopify: ShopifySimulator | None = None
    sitoo: SitooSimulator | None = None
    network: Network | None = None
    worker: Child | None = None
    worker_port: int = field(default_factory=free_port)
    # workers 2..n of the same app, sharing its partitions; Shopify's webhooks and Sitoo's
    # events all go to the first, as to the one address a load balancer would give them
    more_workers: list[Child] = field(default_factory=list)

    @property
    def worker_url(self) -> str:
        return f"http://127.0.0.1:{self.worker_port}"

    @property
    def worker_urls(self) -> list[str]:
        return [self.worker_url] + [
            f"http://127.0.0.1:{w.env['TILLSYNC_WEB_PORT']}" for w in self.more_workers
        ]

    @property
    def workers(self) -> list[Child]:
        return ([self.worker] if self.worker is not None else []) + self.more_workers

    async def start_simulators(self) -> None:
        self.shopify = ShopifySimulator(
            self.settings,
            plan=self.plan,
            webhook_url=f"{self.worker_url}/webhooks/shopify",
            webhook_retry_base_seconds=0.2,
        )
        self.sitoo = SitooSimulator(
            self.settings,
            events_url=f"{self.worker_url}/webhooks/sitoo",
            rate=self.sitoo_rate,
            event_retry_delays=(0.2, 0.5, 1, 2, 5),
            seed_spec=None,
        )
        shopify_url = await self.shopify.start("127.0.0.1", 0)
        sitoo_url = await self.sitoo.start("127.0.0.1", 0)
        self.network = build(self.shopify, self.sitoo, self.spec)
        locations = self.network.write_location_map(self.work_dir / "locations.yaml")
        self.worker_env = {
            "TILLSYNC_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
            "TILLSYNC_APP_ID": self.app_id,
            "TILLSYNC_TOPIC_PARTITIONS": str(self.partitions),
            "TILLSYNC_WEB_PORT": str(self.worker_port),
            "TILLSYNC_DATA_DIR": str(self.work_dir / "worker-data"),
            "TILLSYNC_WORKER_ID": "worker-1",
            "TILLSYNC_LOCATIONS_FILE": str(locations),
            "TILLSYNC_SHOPIFY_URL": shopify_url,
            "TILLSYNC_SITOO_BASE_URL": sitoo_url,
            "TILLSYNC_SITOO_REQUESTS_PER_SECOND": "50",
            **self.worker_env,
        }

    def start_worker(self) -> Child:
        self.worker = Child("worker", ["worker"], self.work_dir, self.worker_env)
        self.worker.start()
        return self.worker

    def add_worker(self) -> Child:
        """Start one more worker of the same app, with a port and a data dir of its own."""
        n = len(self.more_workers) + 2
        env = {
            **self.worker_env,
            "TILLSYNC_WEB_PORT": str(free_port()),
            "TILLSYNC_WORKER_ID": f"worker-{n}",
            "TILLSYNC_DATA_DIR": str(self.work_dir / f"worker-{n}-data"),
        }
        child = Child(f"worker-{n}", ["worker"], self.work_dir, env)
        child.start()
        self.more_workers.append(child)
        return child

    async def wait_ready(self, timeout: float = 120.0) -> None:
        """Every worker answers and its stock flow has taken its snapshot."""
        assert self.worker is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0, headers=self.settings.state_auth_headers) as http:
            for worker, url in zip(self.workers, self.worker_urls, strict=True):
                while True:
                    if worker.proc is not None and worker.proc.poll() is not None:
                        raise RuntimeError(f"{worker.name} exited; see {worker.log_path}")
                    try:
                        r = await http.get(f"{url}/state/stock")
                        if r.status_code == 200 and r.json().get("ready"):
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"{worker.name} was not ready in {timeout}s; see {worker.log_path}"
                        )
                    await asyncio.sleep(0.25)

    async def worker_json(self, path: str) -> Any:
        async with httpx.AsyncClient(timeout=10, headers=self.settings.state_auth_headers) as http:
            return (await http.get(f"{self.worker_url}{path}")).json()

    async def stock_state(self) -> dict[str, int]:
        """The counts of ``/state/stock`` summed over the workers: each tells of the positions
        of its own partitions."""
        totals = {"positions": 0, "in_sync": 0, "in_flight": 0, "drifting": 0, "drift_open": 0}
        async with httpx.AsyncClient(timeout=10, headers=self.settings.state_auth_headers) as http:
            for url in self.worker_urls:
                state = (await http.get(f"{url}/state/stock")).json()
                for name in totals:
                    totals[name] += int(state[name])
        return totals

    async def stop(self) -> None:
        for worker in self.more_workers:
            worker.stop()
        if self.worker is not None:
            self.worker.stop()
        if self.shopify is not None:
            await self.shopify.stop()
        if self.sitoo is not None:
            await self.sitoo.stop()
