"""The operator commands against a worker's HTTP surface (a stand-in server with the worker's
own route pattern, over real HTTP)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from tillsync.cli import main
from tillsync.schemas.settings import ConfigError, Settings, load_settings
from tillsync_sim.procs import free_port

# the state token the stand-in worker requires
TOKEN = "st-7f3a9c"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("TILLSYNC_"):
            monkeypatch.delenv(name)


@pytest.fixture
def worker_url() -> Iterator[str]:
    """Answers /state/stock/{sku} as the worker does, echoing the SKU it was asked for, to a
    request that carries the state token (TOKEN), as a worker with `state_token` set does."""
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def positions(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        sku = request.match_info["sku"]
        row = {
            "location": "Store 1",
            "shopify_location_id": 99,
            "sitoo_total": 5,
            "sitoo_reserved": 0,
            "buffer": 1,
            "pending": 0,
            "target": 4,
            "shopify_observed": 4,
            "in_flight": False,
            "drift_since": None,
            "drift_cause": None,
            "holds": {"1001": {"held": 0, "open": 1, "fulfilled": {}, "booked": {"7": 1}}},
        }
        return web.json_response({"sku": sku, "positions": [row | {"location": sku}]})

    async def serve() -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/state/stock/{sku}", positions)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        started.set()
        return runner

    runner = loop.run_until_complete(serve())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


@pytest.mark.parametrize("sku", ["SKU-1", "BAG/RED/M", "50% OFF?#1"])
def test_stock_show_asks_for_the_sku_as_written(
    worker_url: str, sku: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TILLSYNC_STATE_TOKEN", TOKEN)
    result = CliRunner().invoke(main, ["stock", "show", sku, "--worker", worker_url])
    assert result.exit_code == 0, result.output
    # the stand-in puts the SKU it received in the location column
    assert sku in result.output and "no positions" not in result.output
    # and the online orders its pending units are made of
    assert "order 1001 holds 0: 1 open, fulfilled -, booked in Sitoo {'7': 1}" in result.output


def test_plugin_commands_are_listed_and_load() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("worker", "broker", "stock", "reconcile", "sim", "demo"):
        assert name in result.output
    assert CliRunner().invoke(main, ["sim", "--help"]).exit_code == 0


def test_stock_show_without_the_state_token_says_which_setting_is_missing(
    worker_url: str,
) -> None:
    result = CliRunner().invoke(main, ["stock", "show", "SKU-1", "--worker", worker_url])
    assert result.exit_code == 1
    assert "401" in result.output and "TILLSYNC_STATE_TOKEN" in result.output
    assert "no positions" not in result.output


async def test_reconcile_asks_the_worker_with_the_state_token(worker_url: str) -> None:
    from tillsync.streams.stock import reconcile as rec

    variance = rec.Variance("SKU-1", "Store 1", 99, 2, 5, 1, 4, 3, None, "")
    settings = Settings(state_token=TOKEN)
    [explained] = await rec._explain([variance], worker_url, settings.state_auth_headers)
    # the stand-in answers only with the token; its row has no such location: "unexplained"
    assert explained.note == "unexplained"
    [unasked] = await rec._explain([variance], worker_url, Settings().state_auth_headers)
    assert unasked.note == ""


# -- worker -------------------------------------------------------------------------------------


def _run_worker_with(monkeypatch: pytest.MonkeyPatch, run: Any) -> list[Settings]:
    started: list[Settings] = []

    def run_worker(settings: Settings, logging_config: dict[str, Any]) -> None:
        started.append(settings)
        run(settings)

    monkeypatch.setattr("tillsync.streams.app.run_worker", run_worker)
    return started


def test_worker_insecure_sitoo_endpoint_sets_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    started = _run_worker_with(monkeypatch, lambda settings: None)
    assert CliRunner().invoke(main, ["worker"]).exit_code == 0
    assert CliRunner().invoke(main, ["worker", "--insecure-sitoo-endpoint"]).exit_code == 0
    assert [s.sitoo_events_insecure for s in started] == [False, True]


def test_a_worker_without_sitoo_events_credentials_refuses_to_start_with_a_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tillsync.streams.runtime import load_runtime

    locations = tmp_path / "locations.yaml"
    locations.write_text(
        "locations:\n  - {name: S, shopify_location_id: 1, sitoo_store_id: 1, "
        "sitoo_warehouse_id: 1}\n"
    )
    monkeypatch.setenv("TILLSYNC_CONFIG", str(Path(__file__).parents[2] / "config" / "demo.toml"))
    monkeypatch.setenv("TILLSYNC_LOCATIONS_FILE", str(locations))
    monkeypatch.setenv("TILLSYNC_SITOO_EVENTS_USERNAME", "")
    monkeypatch.setenv("TILLSYNC_SITOO_EVENTS_PASSWORD", "")
    assert load_settings().sitoo_events_username == ""
    _run_worker_with(monkeypatch, load_runtime)
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 1
    assert not isinstance(result.exception, ConfigError)  # a message, not a traceback
    assert "TILLSYNC_SITOO_EVENTS_USERNAME" in result.output
    assert "--insecure-sitoo-endpoint" in result.output
    assert CliRunner().invoke(main, ["worker", "--insecure-sitoo-endpoint"]).exit_code == 0


def test_returns_dismiss_asks_first_and_does_nothing_unconfirmed() -> None:
    listed = CliRunner().invoke(main, ["returns", "--help"])
    assert all(name in listed.output for name in ("show", "link", "dismiss"))
    result = CliRunner().invoke(main, ["returns", "dismiss", "12"], input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output
