"""Fixtures: a simulator on 127.0.0.1 (port 0), a contract-checking HTTP helper, a receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from tillsync.schemas.settings import Settings
from tillsync_sim.sitoo import SeedSpec, SitooSimulator
from tillsync_sim.sitoo.openapi_contract import match_template, validate_response

ACCOUNT = 90001
API_ID = "90001-1"
PASSWORD = "test-password"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "sitoo_base_url": "http://127.0.0.1:1",
        "sitoo_account_id": ACCOUNT,
        "sitoo_api_id": API_ID,
        "sitoo_api_password": PASSWORD,
        "sitoo_requests_per_second": 1000.0,
    }
    values.update(overrides)
    return Settings(**values)


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def sim(settings: Settings) -> AsyncIterator[SitooSimulator]:
    simulator = SitooSimulator(settings, seed=7, seed_spec=SeedSpec(stores=2, skus=5))
    await simulator.start("127.0.0.1", 0)
    yield simulator
    await simulator.stop()


@dataclass
class Api:
    """Calls the simulator and checks every answer against the OpenAPI description."""

    http: httpx.AsyncClient
    prefix: str
    checked: list[str] = field(default_factory=list)

    async def call(
        self, method: str, path: str, *, validate: bool = True, **kwargs: Any
    ) -> httpx.Response:
        resp = await self.http.request(method, self.prefix + path, **kwargs)
        template = match_template(path)
        if validate and template is not None:
            body = resp.json()
            if validate_response(method, template, resp.status_code, body):
                self.checked.append(f"{method} {template} {resp.status_code}")
        return resp

    async def get(self, path: str, **kwargs: Any) -> Any:
        resp = await self.call("GET", path, **kwargs)
        assert resp.status_code == 200, resp.text
        return resp.json()

    async def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        resp = await self.call("POST", path, json=body, **kwargs)
        assert resp.status_code == 200, resp.text
        return resp.json()

    async def put(self, path: str, body: Any, **kwargs: Any) -> Any:
        resp = await self.call("PUT", path, json=body, **kwargs)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture
async def api(sim: SitooSimulator) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=sim.base_url or "", auth=(API_ID, PASSWORD)) as http:
        yield Api(http, sim.account_prefix)


@pytest.fixture
async def control(sim: SitooSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=(sim.base_url or "") + "/_sim") as http:
        yield http


@dataclass
class Receiver:
    """An Events SPI subscriber whose answers a test scripts (status codes, delays)."""

    url: str = ""
    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # consumed first; then 200
    auth_headers: list[str | None] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set, requests wait for it before answering
    in_flight: int = 0
    max_in_flight: int = 0

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for b in self.batches for e in b]

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.json()
            self.auth_headers.append(request.headers.get("Authorization"))
            if self.gate is not None:
                await self.gate.wait()
            status = self.answers.pop(0) if self.answers else 200
            self.batches.append(body if status < 300 else [])
            if status >= 300:
                self.batches.pop()
            return web.Response(status=status)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/events", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/events"
    yield rec
    if rec.gate is not None:
        rec.gate.set()
    await runner.cleanup()


StartSim = Callable[..., Awaitable[SitooSimulator]]


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    """Start simulators with custom arguments; all are stopped at teardown."""
    started: list[SitooSimulator] = []

    async def start(settings: Settings | None = None, **kwargs: Any) -> SitooSimulator:
        kwargs.setdefault("seed", 7)
        kwargs.setdefault("seed_spec", SeedSpec(stores=2, skus=5))
        simulator = SitooSimulator(settings or make_settings(), **kwargs)
        await simulator.start("127.0.0.1", 0)
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        await simulator.stop()
