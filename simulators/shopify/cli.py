"""``tillsync sim shopify``: run the Shopify simulator as a process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path

import click

from tillsync.schemas.settings import ConfigError, load_settings
from tillsync_sim.shopify.cost import PLANS
from tillsync_sim.shopify.faults import Faults


@click.command(name="shopify", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option(
    "--port",
    default=8701,
    show_default=True,
    type=int,
    help="port to bind (0 picks a free one); the demo config expects 8701",
)
@click.option(
    "--webhook-url",
    "webhook_urls",
    multiple=True,
    metavar="URL",
    help="subscribe this receiver to every webhook topic (repeatable)",
)
@click.option(
    "--plan",
    type=click.Choice(sorted(PLANS)),
    default=None,
    help="rate-limit plan of the cost bucket [default: settings.shopify_plan]",
)
@click.option(
    "--seed",
    "seed_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSON file with locations and products to load at start "
    '({"locations":[{"name":..}], "products":[{"title":..,"variants":[{"sku":..,'
    '"price":"..","inventory":{"<location name>":5}}]}]})',
)
@click.option(
    "--rng-seed",
    type=int,
    default=None,
    help="seed for fault and delay randomness, for reproducible runs",
)
@click.option(
    "--faults",
    "faults_json",
    default=None,
    metavar="JSON",
    help='initial faults as JSON, e.g. \'{"latency_ms": 50, "error_rate": 0.01}\'',
)
@click.option(
    "--webhook-retry-base",
    type=float,
    default=1.0,
    show_default=True,
    help="first webhook retry delay in seconds; doubles per retry, 8 retries",
)
def command(
    host: str,
    port: int,
    webhook_urls: tuple[str, ...],
    plan: str | None,
    seed_file: Path | None,
    rng_seed: int | None,
    faults_json: str | None,
    webhook_retry_base: float,
) -> None:
    """Simulate the Shopify Admin GraphQL API, its cost bucket and signed webhooks.

    Credentials, shop domain and API version come from tillsync's settings
    (TILLSYNC_SHOPIFY_ACCESS_TOKEN, TILLSYNC_SHOPIFY_APP_SECRET, ... or $TILLSYNC_CONFIG).
    Merchant actions and faults are driven through the JSON control API under /_sim/.
    """
    from tillsync_sim.shopify.app import ShopifySimulator

    try:
        settings = load_settings()
        settings.require("shopify_access_token", "shopify_app_secret")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    sim = ShopifySimulator(
        settings,
        plan=plan,
        rng_seed=rng_seed,
        webhook_retry_base_seconds=webhook_retry_base,
    )
    for url in webhook_urls:
        sim.subscribe_all(url)
    if seed_file is not None:
        summary = sim.seed(json.loads(seed_file.read_text()))
        click.echo(
            f"seeded {len(summary['locations'])} locations, {len(summary['variants'])} SKUs",
            err=True,
        )
    if faults_json:
        sim.set_faults(Faults.model_validate_json(faults_json))

    async def run() -> None:
        base = await sim.start(host, port)
        click.echo(f"shopify simulator on {base} (GraphQL {sim.graphql_url()})", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await sim.stop()

    asyncio.run(run())
