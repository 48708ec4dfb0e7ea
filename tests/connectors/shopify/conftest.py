"""Fixtures for the Shopify connector tests: settings, an in-process simulator on a free
port, a webhook receiver and a client pointed at the simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from aiohttp import web

from tillsync.connectors.retry import RetryPolicy
from tillsync.connectors.shopify.client import ShopifyClient, ShopifyConfig
from tillsync.schemas.settings import Settings
from tillsync_sim.shopify import ManualClock, ShopifySimulator

TOKEN = "shpat_test_token"
SECRET = "test-app-secret"

SEED: dict[str, Any] = {
    "locations": [{"name": "Store Stockholm"}, {"name": "Warehouse"}],
    "products": [
        {
            "title": "Linen Shirt",
            "variants": [
                {
                    "sku": "SHIRT-S",
                    "price": "499.00",
                    "inventory": {"Store Stockholm": 10, "Warehouse": 50},
                },
                {"sku": "SHIRT-M", "price": "499.00", "inventory": {"Store Stockholm": 4}},
            ],
        },
        {
            "title": "Wool Socks",
            "variants": [{"sku": "SOCKS-1", "price": "99.50", "inventory": {"Warehouse": 0}}],
        },
    ],
}


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "shopify_access_token": TOKEN,
        "shopify_app_secret": SECRET,
        "shopify_api_version": "2026-04",
        "shopify_shop": "tillsync-test.myshopify.com",
        "shopify_plan": "standard",
    }
    values.update(overrides)
    return Settings(**values)


async def wait_for(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0, what: str = ""
) -> None:
    """Poll a condition until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.005)


@dataclass
class Received:
    topic: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many requests first
    calls: int = 0

    def topics(self) -> list[str]:
        return [r.topic for r in self.received]

    def of(self, topic: str) -> list[Received]:
        return [r for r in self.received if r.topic == topic]


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def sim(settings: Settings) -> AsyncIterator[ShopifySimulator]:
    s = ShopifySimulator(settings, webhook_retry_base_seconds=0.01, rng_seed=7)
    s.seed(SEED)
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def manual_sim(settings: Settings, clock: ManualClock) -> AsyncIterator[ShopifySimulator]:
    """A simulator whose cost bucket and fault windows follow ``clock``."""
    s = ShopifySimulator(settings, clock=clock, webhook_retry_base_seconds=0.01, rng_seed=7)
    s.seed(SEED)
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver(url="")

    async def handle(request: web.Request) -> web.Response:
        rec.calls += 1
        body = await request.read()
        if rec.calls <= rec.fail_first:
            return web.Response(status=500)
        rec.received.append(
            Received(request.headers.get("X-Shopify-Topic", ""), dict(request.headers), body)
        )
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/webhooks", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}/webhooks"
    yield rec
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


class GQL:
    """Raw GraphQL calls against the simulator, returning the whole JSON answer."""

    def __init__(self, sim: ShopifySimulator, http: httpx.AsyncClient) -> None:
        self.sim, self.http = sim, http

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        version: str | None = None,
        token: str = TOKEN,
    ) -> dict[str, Any]:
        r = await self.raw(query, variables, version=version, token=token)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    async def raw(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        version: str | None = None,
        token: str = TOKEN,
    ) -> httpx.Response:
        return await self.http.post(
            self.sim.graphql_url(version),
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": token},
        )


@pytest.fixture
def gql(sim: ShopifySimulator, http: httpx.AsyncClient) -> GQL:
    return GQL(sim, http)


@pytest.fixture
def manual_gql(manual_sim: ShopifySimulator, http: httpx.AsyncClient) -> GQL:
    return GQL(manual_sim, http)


@pytest.fixture
async def client(sim: ShopifySimulator, settings: Settings) -> AsyncIterator[ShopifyClient]:
    s = settings.model_copy(update={"shopify_url": sim.base_url})
    fast = RetryPolicy(base=0.02, cap=0.2, max_server_wait=0.2)
    async with ShopifyClient(replace(ShopifyConfig.from_settings(s), retry=fast)) as c:
        yield c


def ids(sim: ShopifySimulator) -> dict[str, Any]:
    from tillsync_sim.shopify.control import state_ids

    return state_ids(sim.state)
