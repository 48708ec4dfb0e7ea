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

from connectors.scenario.network import Network, NetworkSpec, build
from connectors.shopify.sim import ShopifySimulator
from connectors.sitoo.sim import SitooSimulator
from tillsync.procs import Child, free_port
from tillsync.settings import Settings


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

    @property
    def worker_url(self) -> str:
        return f"http://127.0.0.1:{self.worker_port}"

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

    async def wait_ready(self, timeout: float = 120.0) -> None:
        """The worker answers and its stock flow has taken its snapshot."""
        assert self.worker is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.worker.proc is not None and self.worker.proc.poll() is not None:
                    raise RuntimeError(f"the worker exited; see {self.worker.log_path}")
                try:
                    r = await http.get(f"{self.worker_url}/state/stock")
                    if r.status_code == 200 and r.json().get("ready"):
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.25)
        raise TimeoutError(f"the worker was not ready in {timeout}s; see {self.worker.log_path}")

    async def worker_json(self, path: str) -> Any:
        async with httpx.AsyncClient(timeout=10.0) as http:
            return (await http.get(f"{self.worker_url}{path}")).json()

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.shopify is not None:
            await self.shopify.stop()
        if self.sitoo is not None:
            await self.sitoo.stop()
