"""The `tillsync` command line: one entry point for operators and for the demo."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

from tillsync import logs
from tillsync.logs import LogFormat
from tillsync.schemas.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from tillsync.schemas.locations import LocationMap


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _location_map(settings: Settings) -> LocationMap:
    """The location map the settings name, or a message that says what to fix."""
    from tillsync.schemas.locations import LocationMapError, load_location_map

    if settings.locations_file is None:
        raise click.ClickException("set TILLSYNC_LOCATIONS_FILE to the location map")
    try:
        return load_location_map(settings.locations_file)
    except LocationMapError as exc:
        raise click.ClickException(str(exc)) from None


PLUGIN_GROUP = "tillsync.commands"
# commands that other distributions add, and where a user finds them when they are absent
_KNOWN_PLUGINS = {
    "demo": "the simulators (pip install -e ./simulators, or `make setup`)",
    "sim": "the simulators (pip install -e ./simulators, or `make setup`)",
}


class _PluginGroup(click.Group):
    """The top-level group: its own commands plus those other distributions register under the
    `tillsync.commands` entry points (the simulators add `sim` and `demo`).

    The product never imports those distributions; a command loads only when it is used, so
    `tillsync --help` does not pull in the Shopify schema."""

    def _plugins(self) -> dict[str, metadata.EntryPoint]:
        return {ep.name: ep for ep in metadata.entry_points(group=PLUGIN_GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        plugin = self._plugins().get(cmd_name)
        if plugin is None:
            if cmd_name in _KNOWN_PLUGINS:
                raise click.UsageError(
                    f"`tillsync {cmd_name}` comes with {_KNOWN_PLUGINS[cmd_name]}", ctx
                )
            return None
        loaded = plugin.load()
        if not isinstance(loaded, click.Command):
            raise click.ClickException(f"entry point {plugin.value} is not a click command")
        return loaded


@click.group(cls=_PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tillsync")
def main() -> None:
    """tillsync keeps a Shopify store and a Sitoo point of sale in agreement, in real time.

    Settings come from TILLSYNC_* environment variables and the TOML file named by
    TILLSYNC_CONFIG (see config/demo.toml).
    """


# -- broker ---------------------------------------------------------------------------------


@main.group()
def broker() -> None:
    """A local single-node Apache Kafka broker (KRaft) for development, demo and tests."""


_port = click.option("--port", default=9092, show_default=True, help="client (PLAINTEXT) port")
_data = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("var/kafka"),
    show_default=True,
    help="log dir; survives restarts unless wiped",
)


@broker.command("start")
@_port
@_data
@click.option("--controller-port", default=None, type=int, help="default: --port + 1")
@click.option("--wipe", is_flag=True, help="delete the data dir first (all topics are lost)")
@click.option("--timeout", default=120.0, show_default=True, help="seconds to wait for ready")
def broker_start(
    port: int, data_dir: Path, controller_port: int | None, wipe: bool, timeout: float
) -> None:
    """Fetch the Kafka jars (once per machine), format on first use, start, wait until ready."""
    from tillsync import broker as kb

    try:
        info = kb.start(
            kb.BrokerConfig(port=port, controller_port=controller_port, data_dir=data_dir),
            wipe=wipe,
            timeout=timeout,
            echo=lambda m: click.echo(m, err=True),
        )
    except kb.BrokerError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"kafka {kb.KAFKA_VERSION} ready on 127.0.0.1:{port} (pid {info.pid}) "
        f"in {info.seconds_to_ready:.1f}s; logs in {info.log_file}"
    )


@broker.command("stop")
@_data
@click.option("--timeout", default=60.0, show_default=True)
def broker_stop(data_dir: Path, timeout: float) -> None:
    """Stop the broker started from this data dir (SIGTERM, then SIGKILL after --timeout)."""
    from tillsync import broker as kb

    if kb.stop(data_dir, timeout=timeout):
        click.echo("stopped")
    else:
        click.echo("not running")


@broker.command("status")
@_port
@_data
def broker_status(port: int, data_dir: Path) -> None:
    """Say whether the broker runs and answers metadata requests."""
    from tillsync import broker as kb

    status = kb.status(data_dir, port)
    click.echo(status.describe())
    sys.exit(0 if status.ready else 1)


# -- worker ---------------------------------------------------------------------------------


@main.command()
@click.option(
    "--loglevel",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="text lines, or JSON lines for a log shipper  [default: the log_format setting]",
)
@click.option(
    "--insecure-sitoo-endpoint",
    is_flag=True,
    help="take Sitoo Events SPI requests without Basic auth when no sitoo_events_username/"
    "password is set (a local demo only; as sitoo_events_insecure=true)",
)
def worker(loglevel: str, log_format: LogFormat | None, insecure_sitoo_endpoint: bool) -> None:
    """Run a Faust worker: ingestion, tables, drift detection and sinks."""
    settings = _settings(**({"sitoo_events_insecure": True} if insecure_sitoo_endpoint else {}))
    from tillsync.streams.app import run_worker

    try:
        run_worker(settings, logs.config(loglevel, log_format or settings.log_format))
    except ConfigError as exc:  # what the stock flow needs, checked as the app is built
        raise click.ClickException(str(exc)) from None


@main.group()
def stock() -> None:
    """Stock positions as the running worker sees them."""


@stock.command("show")
@click.argument("sku")
@click.option(
    "--worker",
    "workers",
    multiple=True,
    help="worker URL, once per worker of the deployment (each holds its own partitions); "
    "default http://<web_host>:<web_port>",
)
def stock_show(sku: str, workers: tuple[str, ...]) -> None:
    """Print one SKU's positions across locations: Sitoo, buffer, pending, target, Shopify."""
    import httpx

    settings = _settings()
    urls = workers or (f"http://{settings.web_host}:{settings.web_port}",)
    rows: list[dict[str, Any]] = []
    for url in urls:
        try:
            answer = httpx.get(
                f"{url}/state/stock/{quote(sku, safe='')}",
                headers=settings.state_auth_headers,
                timeout=10,
            )
        except httpx.HTTPError as exc:
            raise click.ClickException(f"no worker answers at {url}: {exc}") from None
        if answer.status_code == 401:
            raise click.ClickException(
                f"the worker at {url} answers 401: set TILLSYNC_STATE_TOKEN (or `state_token` "
                "in $TILLSYNC_CONFIG) to the worker's state token"
            )
        body = answer.json()
        rows.extend(body.get("positions", []))
    if not rows:
        click.echo(f"{sku}: no positions on {'this worker' if len(urls) == 1 else 'these workers'}")
        return
    head = ("location", "sitoo", "reserved", "buffer", "pending", "target", "shopify", "state")
    click.echo("  ".join(f"{h:>10}" for h in head))
    for r in rows:
        state = (
            "in flight"
            if r["in_flight"]
            else ("DRIFT " + str(r["drift_cause"]) if r["drift_since"] else "ok")
        )
        values = (
            r["location"],
            r["sitoo_total"],
            r["sitoo_reserved"],
            r["buffer"],
            r["pending"],
            r["target"],
            r["shopify_observed"],
            state,
        )
        click.echo("  ".join(f"{v!s:>10}" for v in values))
        for order, hold in (r.get("holds") or {}).items():
            click.echo(
                f"{'':>10}  order {order} holds {hold['held']}: {hold['open']} open, "
                f"fulfilled {hold['fulfilled'] or '-'}, booked in Sitoo {hold['booked'] or '-'}"
            )


@main.group()
def orders() -> None:
    """Online orders across both platforms."""


@orders.command("show")
@click.argument("order_id", type=click.IntRange(min=1), metavar="ORDER")
@click.option(
    "--worker",
    "workers",
    multiple=True,
    help="worker URL, once per worker of the deployment (the order's track is on one); "
    "default http://<web_host>:<web_port>",
)
@click.option(
    "--since-days",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="how far back to scan Sitoo's ledger for the order's Move Outs",
)
def orders_show(order_id: int, workers: tuple[str, ...], since_days: float) -> None:
    """Print one online order's journey (ORDER: Shopify's numeric order id): its fulfilment
    orders and fulfilments in Shopify, what tillsync holds and sent for it, and each Move Out
    and reversal owed or booked in Sitoo. Exits 1 when one is owed and not booked, or booked
    and not owed."""
    import asyncio
    import time

    import httpx

    from tillsync.connectors.shopify.client import ShopifyError
    from tillsync.connectors.sitoo.client import SitooError
    from tillsync.streams.stock import journey as j

    settings = _settings()
    locations = _location_map(settings)
    urls = workers or (f"http://{settings.web_host}:{settings.web_port}",)
    since = int(time.time() - since_days * 86400)
    try:
        found = asyncio.run(
            j.order_journey(
                settings,
                locations,
                order_id,
                workers=urls,
                since=since,
                echo=lambda m: click.echo(m, err=True),
            )
        )
    except PermissionError as exc:
        raise click.ClickException(str(exc)) from None
    except (ShopifyError, SitooError, httpx.HTTPError) as exc:
        raise click.ClickException(f"could not read the order's journey: {exc}") from None
    for line in j.describe(found, locations):
        click.echo(line)
    wrong = j.problems(found)
    for problem in wrong:
        click.echo(f"PROBLEM: {problem}")
    if wrong:
        raise SystemExit(1)


@main.group()
def returns() -> None:
    """Returns at Sitoo's tills of online orders, and their Shopify returns."""


@returns.command("show")
@click.argument("credit_order_id", type=click.IntRange(min=1), metavar="CREDIT")
def returns_show(credit_order_id: int) -> None:
    """Print one return at a till (CREDIT: the Sitoo credit order's id) as both platforms
    have it now: its rows and reasons, its money, and its Shopify return with what was
    refunded and restocked. Exits 1 when a return is owed and missing, made twice, or holds
    other units than the till returned."""
    import asyncio

    from tillsync.connectors.shopify.client import ShopifyError
    from tillsync.connectors.sitoo.client import SitooError
    from tillsync.streams.returns import show

    settings = _settings()
    try:
        view = asyncio.run(
            show.read_return(settings, credit_order_id, lambda m: click.echo(m, err=True))
        )
    except (ShopifyError, SitooError) as exc:
        raise click.ClickException(f"could not read the return: {exc}") from None
    for line in show.describe(view, settings.return_reasons):
        click.echo(line)
    wrong = show.problems(view, settings.return_reasons)
    for problem in wrong:
        click.echo(f"PROBLEM: {problem}")
    if wrong:
        raise SystemExit(1)


@returns.command("link")
@click.argument("credit_order_id", type=click.IntRange(min=1), metavar="CREDIT")
@click.argument("order_id", type=click.IntRange(min=1), metavar="ORDER")
def returns_link(credit_order_id: int, order_id: int) -> None:
    """Link a blind return (CREDIT: a Sitoo credit order with no receipt) to the online order
    it returns (ORDER: Shopify's numeric order id). Both are checked first: the order must have
    the returned units fulfilled and not returned yet. The worker then makes the Shopify
    return, restock and refund as for any store return, once."""
    import asyncio

    from aiokafka.errors import KafkaError

    from tillsync.connectors.shopify.client import ShopifyError
    from tillsync.connectors.sitoo.client import SitooError
    from tillsync.streams.returns import link

    settings = _settings()
    try:
        checked = asyncio.run(
            link.link(settings, credit_order_id, order_id, lambda m: click.echo(m, err=True))
        )
    except link.LinkRefused as exc:
        raise click.ClickException(str(exc)) from None
    except (ShopifyError, SitooError) as exc:
        raise click.ClickException(f"could not read the return or the order: {exc}") from None
    except KafkaError as exc:
        raise click.ClickException(
            f"could not send the link to Kafka at {settings.kafka_bootstrap}: {exc}"
        ) from None
    for warning in checked.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    click.echo(
        f"linked: Sitoo credit order {credit_order_id} returns Shopify order "
        f"{checked.order.name}; the worker makes the return (tillsync returns show "
        f"{credit_order_id} to follow it)"
    )


@returns.command("dismiss")
@click.argument("credit_order_id", type=click.IntRange(min=1), metavar="CREDIT")
@click.confirmation_option(
    prompt="Was this blind return refunded or returned in Shopify by hand, so that tillsync "
    "must never make its return?"
)
def returns_dismiss(credit_order_id: int) -> None:
    """Take a blind return (CREDIT: a Sitoo credit order with no receipt) out of the queue
    because staff settled it outside tillsync: refunded the customer or made the return in
    Shopify by hand. Nothing is written to either platform, and a later link changes nothing."""
    import asyncio

    from aiokafka.errors import KafkaError

    from tillsync.connectors.sitoo.client import SitooError
    from tillsync.streams.returns import link

    settings = _settings()
    try:
        asyncio.run(link.dismiss(settings, credit_order_id, lambda m: click.echo(m, err=True)))
    except link.LinkRefused as exc:
        raise click.ClickException(str(exc)) from None
    except SitooError as exc:
        raise click.ClickException(f"could not read the return: {exc}") from None
    except KafkaError as exc:
        raise click.ClickException(
            f"could not send the dismissal to Kafka at {settings.kafka_bootstrap}: {exc}"
        ) from None
    click.echo(f"dismissed: blind return {credit_order_id} leaves the queue, settled by hand")


@main.group()
def reconcile() -> None:
    """Compare full snapshots of both platforms."""


@reconcile.command("stock")
@click.option("--heal", is_flag=True, help="feed variances to the worker to mend by policy")
@click.option("--worker", default=None, help="worker URL to explain variances (pending units)")
def reconcile_stock(heal: bool, worker: str | None) -> None:
    """Shopify's bulk export against Sitoo's warehouse items, position by position."""
    from tillsync.streams.stock import reconcile as rec

    settings = _settings()
    locations = _location_map(settings)
    variances = rec.run(
        settings,
        locations,
        heal,
        lambda m: click.echo(m, nl=not m.startswith("\r"), err=True),
        worker,
    )
    if not variances:
        click.echo("no variances: Shopify equals Sitoo less buffers at every position")
        return
    click.echo(f"{'sku':<14}{'location':<20}{'sitoo':>7}{'buffer':>7}{'shopify':>8}  note")
    for v in variances:
        click.echo(
            f"{v.sku:<14}{v.location:<20}{v.sitoo_available:>7}{v.buffer:>7}{v.shopify:>8}  "
            f"{v.note or ''}"
        )
    click.echo(f"{len(variances)} variances")


if __name__ == "__main__":
    main()
