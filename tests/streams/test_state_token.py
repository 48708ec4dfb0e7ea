"""The worker's /state/* views publish stock levels: with `state_token` set they answer only a
request that carries it; /metrics, /health and the receivers stay as they are."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from tillsync.schemas.settings import load_settings
from tillsync.streams.app import build_app, state_guard, state_token_ok

TOKEN = "st-7f3a9c"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("TILLSYNC_"):
            monkeypatch.delenv(name)


def _app(token: str | None) -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    def unauthorized() -> web.Response:
        return web.json_response({"error": "unauthorized"}, status=401)

    guard = state_guard(SecretStr(token) if token is not None else None, unauthorized)
    app = web.Application(middlewares=[guard] if guard is not None else [])
    for path in ("/state/stock", "/state/stock/{sku}", "/state/raw-counts", "/metrics", "/health"):
        app.router.add_get(path, ok)
    app.router.add_post("/webhooks/shopify", ok)
    return app


@pytest.fixture
async def guarded() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(_app(TOKEN))) as client:
        yield client


@pytest.mark.parametrize("path", ["/state/stock", "/state/stock/A%2FB", "/state/raw-counts"])
async def test_state_without_the_token_is_401(
    guarded: TestClient[web.Request, web.Application], path: str
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        answer = await guarded.get(path, headers=headers)
        assert answer.status == 401, headers


async def test_state_with_the_token_answers(
    guarded: TestClient[web.Request, web.Application],
) -> None:
    for scheme in ("Bearer", "bearer"):
        answer = await guarded.get("/state/stock", headers={"Authorization": f"{scheme} {TOKEN}"})
        assert answer.status == 200


async def test_metrics_health_and_the_receivers_need_no_token(
    guarded: TestClient[web.Request, web.Application],
) -> None:
    assert (await guarded.get("/metrics")).status == 200
    assert (await guarded.get("/health")).status == 200
    assert (await guarded.post("/webhooks/shopify")).status == 200


async def test_without_a_token_set_state_is_open() -> None:
    assert state_guard(None, lambda: None) is None
    async with TestClient(TestServer(_app(None))) as client:
        assert (await client.get("/state/stock")).status == 200


def test_a_non_ascii_authorization_is_refused_not_an_error() -> None:
    token = SecretStr(TOKEN)
    assert state_token_ok(f"Bearer {TOKEN}", token)
    assert not state_token_ok(f"Bearer {TOKEN}ü", token)
    assert not state_token_ok("Bearer tök", token)
    assert not state_token_ok(None, token)
    assert not state_token_ok("", token)


async def test_the_worker_app_guards_its_own_state_views(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, app_id="t-state", state_token=TOKEN)
    app = build_app(settings).app
    async with TestClient(TestServer(app.web.web_app)) as client:
        for path in ("/state/raw-counts", "/state/raw-counts/"):
            answer = await client.get(path)
            assert answer.status == 401
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            assert "state_token" in (await answer.json())["error"]
            assert TOKEN not in await answer.text()
        assert (await client.get("/metrics")).status == 200


async def test_the_worker_app_without_a_token_leaves_state_open(tmp_path: Path) -> None:
    app = build_app(load_settings(data_dir=tmp_path, app_id="t-state-open")).app
    assert not app.web.web_app.middlewares
