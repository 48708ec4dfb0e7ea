"""The Faust application: its settings, topics, tables, agents and web views."""

from __future__ import annotations

import asyncio
import hmac
import logging
import logging.config
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from faust.types import TP, AppT, Message
from faust.web import Request, Response, View
from prometheus_client import generate_latest
from pydantic import SecretStr

from tillsync.schemas.settings import Settings
from tillsync.streams import commit_floor, fetch_wait, metrics, topics
from tillsync.streams.admin import Changelog, ensure_topics
from tillsync.streams.context import Context
from tillsync.streams.runtime import load_runtime

log = logging.getLogger("tillsync.worker")

METRICS_TYPE = "text/plain; version=0.0.4"
PRODUCER_BUFFER_MAX = 5_000
LAG_REFRESH_SECONDS = 5.0
# the views that publish stock levels and counts: behind `state_token` when it is set
STATE_PREFIX = "/state"


def build_app(settings: Settings) -> Context:
    fetch_wait.install()
    commit_floor.install()
    app = faust.App(
        settings.app_id,
        broker=settings.kafka_broker_url,
        store="rocksdb://",
        # one dir per app id: RocksDB files must never meet the changelog of another app
        datadir=str(settings.data_dir / settings.app_id),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        # one worker per node by default; standbys would double writes for nothing
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        stream_recovery_delay=0.0,
        # a few ms of linger lets one produce request carry many records: per-record requests
        # cost more CPU than the agents' own work at a few thousand events/s
        producer_linger=0.005,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 5),
        consumer_group_instance_id=settings.worker_id,
        value_serializer="raw",
        key_serializer="raw",
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_enabled=True,
        # the built-in /stats/ and table views would publish SKU-level data; ours are explicit
        web_stats_enabled=False,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        logging_config=None,
        # the app is named before it exists: the guard builds its answer only when asked
        web_application_options=_web_options(settings, lambda: app),
    )
    # Table writes queue in Faust's producer buffer, and the conductor stops taking records
    # while it holds more than this (Faust's default, 100, logs a warning per batch). Batched
    # agents store up to a thousand positions at once; public API has no setting for it.
    app.producer.buffer.max_messages = PRODUCER_BUFFER_MAX
    (settings.data_dir / settings.app_id).mkdir(parents=True, exist_ok=True)
    runtime = load_runtime(settings) if settings.locations_file else None
    ctx = Context(app=app, settings=settings, runtime=runtime)
    for spec in topics.ALL:
        ctx.declared[spec.suffix] = app.topic(
            spec.name(settings.app_id),
            partitions=spec.partitions or settings.topic_partitions,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
    _register(ctx)
    return ctx


def _register(ctx: Context) -> None:
    # each flow registers its agents, tables, timers and views from its own package
    from tillsync.streams import audit, ingest, returns, stock

    audit.register(ctx)
    ingest.register(ctx)
    if ctx.runtime is not None:
        stock.register(ctx)
        if ctx.settings.returns_to_shopify:
            returns.register(ctx)
        if ctx.settings.refunds_to_sitoo:
            returns.register_refund_credits(ctx)
    else:
        log.warning("no locations_file: stock sync is off; only ingestion and audit run")
    _views(ctx)


def _views(ctx: Context) -> None:
    app = ctx.app
    metrics.bind_topics(spec.name(ctx.settings.app_id) for spec in topics.ALL)
    _consumer_lag(ctx)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # aiohttp refuses a charset inside content_type; Prometheus reads text as UTF-8
            return self.bytes(generate_latest(metrics.REGISTRY), content_type=METRICS_TYPE)

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            ready = app.rebalancing is False and bool(app.consumer.assignment())
            return self.json(
                {"status": "ok" if ready else "starting", "app": app.conf.id},
                status=200 if ready else 503,
            )


def state_token_ok(header: str | None, token: SecretStr) -> bool:
    """Whether an Authorization header is `Bearer <token>` (the scheme in any case)."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # bytes: compare_digest refuses non-ASCII str; aiohttp keeps undecodable bytes as surrogates
    got = given.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(got, token.get_secret_value().encode())


def _is_state(request: Any) -> bool:
    # the route matched as well as the path asked for: the two cannot disagree to get past
    resource = request.match_info.route.resource
    paths = (request.path, resource.canonical if resource is not None else "")
    return any(p == STATE_PREFIX or p.startswith(STATE_PREFIX + "/") for p in paths)


# an aiohttp middleware, (request, handler) -> response; typed loosely since the product reaches
# aiohttp only through Faust's web driver
Middleware = Callable[[Any, Callable[[Any], Awaitable[Any]]], Awaitable[Any]]


def state_guard(token: SecretStr | None, unauthorized: Callable[[], Any]) -> Middleware | None:
    """The web app's one check of the state token, for every /state/* view (None: no token,
    /state/* is open); `unauthorized` makes the 401. /metrics, /health and the receivers (which
    prove their senders themselves) are not its business."""
    if token is None:
        return None

    async def guard(request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        if _is_state(request) and not state_token_ok(request.headers.get("Authorization"), token):
            return unauthorized()
        return await handler(request)

    # what aiohttp's `@web.middleware` marks: a (request, handler) middleware, not a factory
    setattr(guard, "__middleware_version__", 1)  # noqa: B010
    return guard


def _web_options(settings: Settings, app: Callable[[], faust.App]) -> dict[str, Any] | None:
    def unauthorized() -> Any:
        return app().web.json(
            {"error": "unauthorized: send Authorization: Bearer <state_token>"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="tillsync state"'},
        )

    guard = state_guard(settings.state_token, unauthorized)
    return {"middlewares": [guard]} if guard is not None else None


class _LagSensor(faust.Sensor):
    """Tells `metrics.consumer_lag` what Faust's public sensor hooks say: the offset of each
    record every stream is done with, and when the assignment changes."""

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        metrics.consumer_lag.processed(tp, offset)

    def on_rebalance_start(self, app: AppT) -> dict[str, Any]:
        # Kafka's eager rebalance takes every partition away first: what this worker knew of a
        # partition is stale if it comes back after another worker had it
        metrics.consumer_lag.forget_all()
        return super().on_rebalance_start(app)

    def on_rebalance_end(self, app: AppT, state: dict[str, Any]) -> None:
        _attach_lag(app)


def _attach_lag(app: AppT) -> None:
    # the tables' changelogs commit no offsets (acks off): their partitions have no lag to show
    metrics.consumer_lag.attach(app.consumer, app.topics.acks_enabled_for)


def _consumer_lag(ctx: Context) -> None:
    """Feed `metrics.consumer_lag`, which computes the lag when scraped (see ConsumerLag)."""
    app = ctx.app
    app.sensors.add(_LagSensor())

    @app.timer(LAG_REFRESH_SECONDS)
    async def refresh_lag() -> None:
        # what needs awaiting, cached for the scrape; the series come from the assignment then
        _attach_lag(app)
        consumer = app.consumer
        try:
            assigned = [tp for tp in consumer.assignment() if app.topics.acks_enabled_for(tp.topic)]
            ends = await consumer.highwaters(*assigned) if assigned else {}
        except Exception:  # stopping, a rebalance or a broker away: the next tick tells
            return
        positions: dict[TP, int] = {}
        for tp in assigned:
            try:
                position = await consumer.position(tp)
            except Exception:  # revoked mid-read
                continue
            if position is not None:
                positions[tp] = position
        metrics.consumer_lag.refresh(ends, positions)


def run_worker(settings: Settings, logging_config: dict[str, Any]) -> None:
    """Create the topics, then hand the process to Faust's worker, which applies
    ``logging_config`` (one ``dictConfig`` for the whole process) and runs until stopped."""
    logging.config.dictConfig(logging_config)  # the topic set-up below logs too
    ctx = build_app(settings)
    changelogs = [
        Changelog(
            name=table.changelog_topic.get_topic_name(),
            partitions=table.partitions or settings.topic_partitions,
        )
        for table in ctx.app.tables.values()
    ]
    # in a thread of its own: the app is built already, and asyncio.run would leave this
    # thread without the event loop Faust's objects were made for
    with ThreadPoolExecutor(max_workers=1) as pool:
        created = pool.submit(
            asyncio.run,
            ensure_topics(
                settings.kafka_bootstrap, settings.app_id, settings.topic_partitions, changelogs
            ),
        ).result()
    if created:
        log.info("created topics: %s", ", ".join(created))
    worker = faust.Worker(
        ctx.app,
        loglevel=logging.getLogger().level,
        logging_config=logging_config,
        # its stdout/stderr stay ours: the log handler writes to stderr already
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
