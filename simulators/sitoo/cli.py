"""`tillsync sim sitoo`: run the Sitoo simulator as a process."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click

from tillsync.schemas.settings import ConfigError, load_settings

from .faults import Faults
from .seed import SeedSpec
from .server import SitooSimulator


async def _serve(sim: SitooSimulator, host: str, port: int) -> None:
    base = await sim.start(host, port)
    click.echo(f"sitoo simulator: {sim.account_url} (control API {base}/_sim/)", err=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


@click.command("sitoo")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option(
    "--port",
    default=8702,
    show_default=True,
    type=int,
    help="port to serve REST v2 and the /_sim control API on (0 = any free port)",
)
@click.option(
    "--events-url",
    default=None,
    metavar="URL",
    help="Events SPI subscriber: batches of up to 10 events are POSTed here; "
    "none = events are only kept for GET /_sim/events",
)
@click.option(
    "--rate",
    default=20.0,
    show_default=True,
    type=float,
    help="requests/second past which REST calls get 429 + Retry-After (0 = no limit;"
    " Sitoo publishes no figure, this is a guess)",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="random seed: ids, prices and stock are repeatable for one seed",
)
@click.option("--stores", default=3, show_default=True, type=int, help="stores to create")
@click.option("--skus", default=20, show_default=True, type=int, help="products to create")
@click.option(
    "--stock",
    default=(5, 30),
    show_default=True,
    type=(int, int),
    metavar="MIN MAX",
    help="opening stock per SKU and store, drawn uniformly",
)
@click.option("--empty", is_flag=True, help="start with no stores, products or stock")
@click.option(
    "--latency-ms",
    default=(0.0, 0.0),
    type=(float, float),
    metavar="MIN MAX",
    show_default=True,
    help="fault: latency added to every REST answer",
)
@click.option(
    "--error-rate",
    default=0.0,
    show_default=True,
    type=float,
    help="fault: share of REST calls answered 500",
)
@click.option(
    "--event-duplicates",
    default=0.0,
    show_default=True,
    type=float,
    help="fault: share of delivered event batches sent a second time",
)
def command(
    host: str,
    port: int,
    events_url: str | None,
    rate: float,
    seed: int,
    stores: int,
    skus: int,
    stock: tuple[int, int],
    empty: bool,
    latency_ms: tuple[float, float],
    error_rate: float,
    event_duplicates: float,
) -> None:
    """Simulate a Sitoo account: REST v2, Events SPI push, store actions and faults.

    Credentials and the account id come from the tillsync settings (sitoo_account_id,
    sitoo_api_id, sitoo_api_password; optional sitoo_events_username/password for Basic auth
    to the events receiver). Store actions and faults are driven through /_sim/ (POST
    /_sim/stores/{id}/sale, /_sim/faults, GET /_sim/state/stock, ...).
    """
    try:
        settings = load_settings()
        settings.require("sitoo_account_id", "sitoo_api_id", "sitoo_api_password")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    faults = Faults()
    faults.update(
        {
            "latency_ms": list(latency_ms),
            "error_rate": error_rate,
            "event_duplicate_rate": event_duplicates,
        }
    )
    spec = (
        None
        if empty
        else SeedSpec(stores=stores, skus=skus, min_stock=stock[0], max_stock=stock[1])
    )
    sim = SitooSimulator(
        settings, events_url=events_url, rate=rate, seed=seed, seed_spec=spec, faults=faults
    )
    asyncio.run(_serve(sim, host, port))


if __name__ == "__main__":
    command()
