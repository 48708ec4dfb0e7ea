"""The operator commands against a worker's HTTP surface (a stand-in server with the worker's
own route pattern, over real HTTP)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from click.testing import CliRunner

from tillsync.cli import main
from tillsync_sim.procs import free_port


@pytest.fixture
def worker_url() -> Iterator[str]:
    """Answers /state/stock/{sku} as the worker does, echoing the SKU it was asked for."""
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def positions(request: web.Request) -> web.Response:
        sku = request.match_info["sku"]
        row = {
            "location": "Store 1",
            "sitoo_total": 5,
            "sitoo_reserved": 0,
            "buffer": 1,
            "pending": 0,
            "target": 4,
            "shopify_observed": 4,
            "in_flight": False,
            "drift_since": None,
            "drift_cause": None,
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
def test_stock_show_asks_for_the_sku_as_written(worker_url: str, sku: str) -> None:
    result = CliRunner().invoke(main, ["stock", "show", sku, "--worker", worker_url])
    assert result.exit_code == 0, result.output
    # the stand-in puts the SKU it received in the location column
    assert sku in result.output


def test_plugin_commands_are_listed_and_load() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("worker", "broker", "stock", "reconcile", "sim", "demo"):
        assert name in result.output
    assert CliRunner().invoke(main, ["sim", "--help"]).exit_code == 0
