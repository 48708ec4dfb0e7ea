"""Prometheus metrics: names prefixed ``tillsync_``, ending in their unit (``_seconds``, or what
a gauge counts: ``_positions``, ``_writes``, ``_records``), counters in ``_total``, no SKU labels.

One registry per process keeps the worker's and a test's metrics apart. It also carries the
process (CPU, memory, file descriptors), platform (Python version) and garbage-collector
metrics of the worker.

Every label takes its values from a fixed set (the enums below, or the app's own topics): a value
outside it is recorded as ``other``, so a new code path or a free-text reason shows up as one
series to look into instead of one new series per text. Every allowed combination exists from
the start at 0, so a panel reads 0 rather than "no data" until the first event.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from tillsync.schemas.events import DriftCause, Owner

# Counters and histograms would each add a `<name>_created` gauge (a Unix time, named without a
# unit) to every series: twice the series for a number nothing here reads.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

OTHER = "other"


class Platform(StrEnum):
    SHOPIFY = "shopify"
    SITOO = "sitoo"


class ApiOutcome(StrEnum):
    """How a platform call ended, as the API clients report it (``on_call``)."""

    OK = "ok"
    THROTTLED = "throttled"  # Shopify's cost limit (GraphQL THROTTLED) or Sitoo's 429
    RATE_LIMITED = "rate_limited"  # Shopify's HTTP 429
    SERVER_ERROR = "server_error"
    TRANSPORT_ERROR = "transport_error"
    GRAPHQL_ERROR = "graphql_error"
    UNAUTHORIZED = "unauthorized"
    HTTP_ERROR = "http_error"
    CLIENT_ERROR = "client_error"


# what each client reports (connectors/*/client.py): the series created at 0
API_OUTCOMES: dict[Platform, tuple[ApiOutcome, ...]] = {
    Platform.SHOPIFY: (
        ApiOutcome.OK,
        ApiOutcome.THROTTLED,
        ApiOutcome.RATE_LIMITED,
        ApiOutcome.SERVER_ERROR,
        ApiOutcome.TRANSPORT_ERROR,
        ApiOutcome.GRAPHQL_ERROR,
        ApiOutcome.UNAUTHORIZED,
        ApiOutcome.HTTP_ERROR,
    ),
    Platform.SITOO: (
        ApiOutcome.OK,
        ApiOutcome.THROTTLED,
        ApiOutcome.SERVER_ERROR,
        ApiOutcome.TRANSPORT_ERROR,
        ApiOutcome.CLIENT_ERROR,
    ),
}


class IgnoredReason(StrEnum):
    """Why an event changed nothing."""

    DUPLICATE = "duplicate"  # delivered again: same webhook id, ledger id or order line
    STALE = "stale"  # older than what the position already knows
    UNMAPPED = "unmapped"  # a Shopify location no store is mapped to (webhooks)
    # a stock event of a warehouse or location no store is mapped to (positions agent)
    UNMAPPED_LOCATION = "unmapped location"
    ECHO = "echo"  # our own write coming back
    UNKNOWN = "unknown"  # an inventory item with no known SKU


# The positions agent says why in words (`Outcome.ignored`, for the audit): its first words map
# to a reason; anything else is `other`.
_IGNORED_PREFIXES: tuple[tuple[str, IgnoredReason], ...] = (
    ("stale ", IgnoredReason.STALE),
    ("older ", IgnoredReason.STALE),
    ("order line ", IgnoredReason.DUPLICATE),  # "order line <ref> already settled"
)


def reason_of(ignored: str) -> str:
    """The `events_ignored` reason for the positions agent's words (``Outcome.ignored``)."""
    for prefix, reason in _IGNORED_PREFIXES:
        if ignored.startswith(prefix):
            return reason
    return OTHER


class WebhookSource(StrEnum):
    SHOPIFY = "shopify"
    SITOO = "sitoo"


class RejectReason(StrEnum):
    """Why a sender was not believed."""

    SIGNATURE = "signature"  # Shopify's HMAC does not match
    AUTH = "auth"  # Sitoo's basic auth does not match
    SHOP = "shop"  # a validly signed Shopify webhook for another shop


# each sender proves itself one way: the series created at 0
REJECTED_BY = {
    WebhookSource.SHOPIFY: RejectReason.SIGNATURE,
    WebhookSource.SITOO: RejectReason.AUTH,
}


class ExceptionType(StrEnum):
    SHOPIFY_INVENTORY_WRITE_FAILED = "shopify_inventory_write_failed"
    SITOO_STOCK_WRITE_FAILED = "sitoo_stock_write_failed"
    DUPLICATE_SKU = "duplicate_sku"  # several Shopify items claim one SKU
    RENAMED_SKU = "renamed_sku"  # an item's SKU changed under a position
    # click & collect (flows.md, A)
    PICKUP_NOT_IN_SITOO = "pickup_not_in_sitoo"  # Sitoo refused the pickup's order
    PICKUP_NOT_IN_STORE = "pickup_not_in_store"  # no Sitoo order in time after routing
    PICKUP_NOT_READY = "pickup_not_ready"
    PICKUP_UNCOLLECTED = "pickup_uncollected"
    PICKUP_OPEN_IN_SHOPIFY = "pickup_open_in_shopify"  # collected in Sitoo, open in Shopify
    PICKUP_LOCATION_UNMAPPED = "pickup_location_unmapped"
    PICKUP_SKU_UNMAPPED = "pickup_sku_unmapped"
    PICKUP_REJECTED = "pickup_rejected"
    PICKUP_READY_UNKNOWN = "pickup_ready_unknown"  # a crash between the ask and its answer
    PICKUP_READY_REFUSED = "pickup_ready_refused"
    PICKUP_FULFILMENT_REFUSED = "pickup_fulfilment_refused"
    PICKUP_CAPTURE_REFUSED = "pickup_capture_refused"  # the money is at risk: finance
    PICKUP_AUTHORISATION_EXPIRING = "pickup_authorisation_expiring"
    PICKUP_STEP_FAILED = "pickup_step_failed"
    SHIPMENT_NOT_SHIPPED = "shipment_not_shipped"  # ship-from-store, not shipped in time
    PICKUP_UNPAID = "pickup_unpaid"  # paid in store, handed over with no payment
    PICKUP_MARK_PAID_REFUSED = "pickup_mark_paid_refused"
    PICKUP_DECLINE_REFUSED = "pickup_decline_refused"  # units declined at the counter
    # store returns (flows.md, C)
    RETURN_NOT_RETURNABLE = "return_not_returnable"  # Shopify has fewer units to return
    RETURN_LINES_MISMATCH = "return_lines_mismatch"  # its Shopify return says other units
    RETURN_REFUND_MISMATCH = "return_refund_mismatch"  # Sitoo's amount is not Shopify's
    RETURN_REFUND_REFUSED = "return_refund_refused"
    RETURN_REFUSED = "return_refused"  # Shopify refused the return or its disposal
    RETURN_BLIND = "return_blind"  # a credit order linked to no original: link by hand
    RETURN_UNSELLABLE_IN_STOCK = "return_unsellable_in_stock"  # damaged, in sellable stock
    RETURN_STEP_FAILED = "return_step_failed"
    REFUND_NOT_IN_SITOO = "refund_not_in_sitoo"  # Sitoo refused a refund's credit order


# the team each exception goes to: the series created at 0
EXCEPTION_OWNERS = {
    ExceptionType.SHOPIFY_INVENTORY_WRITE_FAILED: Owner.ECOMMERCE,
    ExceptionType.SITOO_STOCK_WRITE_FAILED: Owner.STORE_OPS,
    ExceptionType.DUPLICATE_SKU: Owner.ECOMMERCE,
    ExceptionType.RENAMED_SKU: Owner.ECOMMERCE,
    ExceptionType.PICKUP_NOT_IN_SITOO: Owner.ENGINEERING,
    ExceptionType.PICKUP_NOT_IN_STORE: Owner.ENGINEERING,
    ExceptionType.PICKUP_NOT_READY: Owner.STORE_OPS,
    ExceptionType.PICKUP_UNCOLLECTED: Owner.ECOMMERCE,
    ExceptionType.PICKUP_OPEN_IN_SHOPIFY: Owner.ENGINEERING,
    ExceptionType.PICKUP_LOCATION_UNMAPPED: Owner.ENGINEERING,
    ExceptionType.PICKUP_SKU_UNMAPPED: Owner.ECOMMERCE,
    ExceptionType.PICKUP_REJECTED: Owner.ECOMMERCE,
    ExceptionType.PICKUP_READY_UNKNOWN: Owner.ECOMMERCE,
    ExceptionType.PICKUP_READY_REFUSED: Owner.ECOMMERCE,
    ExceptionType.PICKUP_FULFILMENT_REFUSED: Owner.ECOMMERCE,
    ExceptionType.PICKUP_CAPTURE_REFUSED: Owner.FINANCE,
    ExceptionType.PICKUP_AUTHORISATION_EXPIRING: Owner.FINANCE,
    ExceptionType.PICKUP_STEP_FAILED: Owner.ENGINEERING,
    ExceptionType.SHIPMENT_NOT_SHIPPED: Owner.STORE_OPS,
    ExceptionType.PICKUP_UNPAID: Owner.FINANCE,
    ExceptionType.PICKUP_MARK_PAID_REFUSED: Owner.FINANCE,
    ExceptionType.PICKUP_DECLINE_REFUSED: Owner.ECOMMERCE,
    ExceptionType.RETURN_NOT_RETURNABLE: Owner.ECOMMERCE,
    ExceptionType.RETURN_LINES_MISMATCH: Owner.ENGINEERING,
    ExceptionType.RETURN_REFUND_MISMATCH: Owner.FINANCE,
    ExceptionType.RETURN_REFUND_REFUSED: Owner.FINANCE,
    ExceptionType.RETURN_REFUSED: Owner.ECOMMERCE,
    ExceptionType.RETURN_BLIND: Owner.STORE_OPS,
    ExceptionType.RETURN_UNSELLABLE_IN_STOCK: Owner.STORE_OPS,
    ExceptionType.RETURN_STEP_FAILED: Owner.ENGINEERING,
    ExceptionType.REFUND_NOT_IN_SITOO: Owner.FINANCE,
}


class Write(StrEnum):
    """The platform operations the sinks write with (`events_out`'s `topic`)."""

    SHOPIFY_INVENTORY = "shopify.inventorySetQuantities"
    SITOO_TRANSACTIONS = "sitoo.warehousetransactions"


class Flow(StrEnum):
    STOCK = "stock"


class Sink(StrEnum):
    SHOPIFY_INVENTORY = "shopify-inventory"
    SITOO_MOVE_OUT = "sitoo-move-out"
    ORDER_READS = "shopify-order-reads"  # orders waiting to be read, not a write
    SITOO_ORDERS = "sitoo-orders"  # store orders (pickup, ship-from-store) to make or cancel
    PICKUP_STEPS = "pickup-steps"  # steps at the till to tell Shopify
    STORE_RETURNS = "store-returns"  # Sitoo credit orders to make Shopify returns of
    REFUND_CREDITS = "refund-credits"  # Shopify refunds to book as Sitoo credit orders


M = TypeVar("M", Counter, Gauge, Histogram)


class Fixed(Generic[M]):
    """A labelled metric whose label values come from fixed sets.

    ``labels()`` records a value outside its label's set as ``other``. A label whose set is
    ``None`` takes any value until :meth:`allow` sets it (the app's topic names, known once the
    app id is). The series are created at 0 as soon as the sets are known: every combination of
    allowed values, or only those of ``series`` when most combinations cannot happen.
    """

    def __init__(
        self,
        metric: M,
        /,
        *,
        series: Iterable[Mapping[str, str]] | None = None,
        **allowed: Iterable[str] | None,
    ) -> None:
        # one keyword per label of `metric`: prometheus_client refuses a child missing one
        self.metric: M = metric
        self._allowed: dict[str, frozenset[str] | None] = dict.fromkeys(allowed)
        self._series = None if series is None else [dict(s) for s in series]
        self.allow(**allowed)

    def allow(self, **allowed: Iterable[str] | None) -> None:
        """Set the allowed values of some labels, and create their series at 0."""
        for label, values in allowed.items():
            if label not in self._allowed:
                raise ValueError(f"no label {label!r} here")
            self._allowed[label] = None if values is None else frozenset(map(str, values))
        names = list(self._allowed)
        sets = [self._allowed[label] for label in names]
        if any(s is None for s in sets):
            return
        if self._series is None:
            combos = [
                dict(zip(names, combo, strict=True))
                for combo in itertools.product(*(sorted(s or ()) for s in sets))
            ]
        else:
            combos = self._series
        for combo in combos:
            self.labels(**combo)

    def labels(self, **values: object) -> M:
        return self.metric.labels(**{k: self._fixed(k, str(v)) for k, v in values.items()})

    def _fixed(self, label: str, value: str) -> str:
        allowed = self._allowed[label]
        return value if allowed is None or value in allowed else OTHER


events_in = Fixed(
    Counter("tillsync_events_in_total", "Records taken in, by topic", ["topic"], registry=REGISTRY),
    topic=None,  # the app's topics: bind_topics
)
events_out = Fixed(
    Counter(
        "tillsync_events_out_total",
        "Writes confirmed by a platform, by operation",
        ["topic"],
        registry=REGISTRY,
    ),
    topic=Write,
)
dead_letters = Fixed(
    Counter(
        "tillsync_dead_letters_total",
        "Records sent to the dead-letter topic, by origin topic",
        ["origin"],
        registry=REGISTRY,
    ),
    origin=None,  # the app's topics: bind_topics
)
sync_latency = Fixed(
    Histogram(
        "tillsync_sync_latency_seconds",
        "Source event time to confirmed write on the other platform",
        ["flow"],
        buckets=LATENCY_BUCKETS,
        registry=REGISTRY,
    ),
    flow=Flow,
)
drift_detected = Fixed(
    Counter(
        "tillsync_drift_detected_total", "Drift detected, by cause", ["cause"], registry=REGISTRY
    ),
    cause=DriftCause,
)
drift_healed = Counter("tillsync_drift_healed_total", "Drift healed by a write", registry=REGISTRY)
drift_open = Gauge(
    "tillsync_drift_open_positions",
    "Positions in drift now (this worker's partitions)",
    registry=REGISTRY,
)
exceptions_raised = Fixed(
    Counter(
        "tillsync_exceptions_total",
        "Exceptions raised, by type and owner",
        ["type", "owner"],
        registry=REGISTRY,
    ),
    series=[{"type": type_, "owner": owner} for type_, owner in EXCEPTION_OWNERS.items()],
    type=ExceptionType,
    owner=Owner,
)
api_calls = Fixed(
    Counter(
        "tillsync_api_calls_total",
        "Calls to a platform API, by platform and outcome",
        ["platform", "outcome"],
        registry=REGISTRY,
    ),
    series=[
        {"platform": platform, "outcome": outcome}
        for platform, outcomes in API_OUTCOMES.items()
        for outcome in outcomes
    ],
    platform=Platform,
    outcome=ApiOutcome,
)
api_call_seconds = Fixed(
    Histogram(
        "tillsync_api_call_seconds",
        "Duration of platform API calls",
        ["platform"],
        buckets=LATENCY_BUCKETS,
        registry=REGISTRY,
    ),
    platform=Platform,
)
shopify_points = Fixed(
    Counter(
        "tillsync_shopify_query_points_total",
        "Shopify's query cost points, by document and kind (requested before the call, "
        "actual after it)",
        ["document", "kind"],
        registry=REGISTRY,
    ),
    # the operation names of our own documents: bounded by the code, not by the input
    document=None,
    kind=("requested", "actual"),
)
throttle_wait = Fixed(
    Counter(
        "tillsync_api_throttle_wait_seconds_total",
        "Time spent waiting for a platform's rate limit",
        ["platform"],
        registry=REGISTRY,
    ),
    platform=Platform,
)
sink_backlog = Fixed(
    Gauge(
        "tillsync_sink_backlog_writes",
        "Coalesced writes waiting in a sink",
        ["sink"],
        registry=REGISTRY,
    ),
    sink=Sink,
)
webhooks_rejected = Fixed(
    Counter(
        "tillsync_webhooks_rejected_total",
        "Webhook and Events SPI requests refused, by source and reason",
        ["source", "reason"],
        registry=REGISTRY,
    ),
    series=[{"source": source, "reason": reason} for source, reason in REJECTED_BY.items()],
    source=WebhookSource,
    reason=RejectReason,
)
events_ignored = Fixed(
    Counter(
        "tillsync_events_ignored_total",
        "Events that changed nothing (stale, duplicate, unmapped, echo of our write), by reason",
        ["reason"],
        registry=REGISTRY,
    ),
    reason=IgnoredReason,
)

breaker_open = Fixed(
    Gauge(
        "tillsync_breaker_open_since_timestamp_seconds",
        "When a platform's circuit breaker opened and began holding its writes back; 0 closed",
        ["platform"],
        registry=REGISTRY,
    ),
    platform=Platform,
)
breaker_opened = Fixed(
    Counter(
        "tillsync_breaker_opened_total",
        "Times a platform's circuit breaker opened",
        ["platform"],
        registry=REGISTRY,
    ),
    platform=Platform,
)
unknown_skus = Fixed(
    Counter(
        "tillsync_unknown_sku_events_total",
        "Events for a SKU the other platform does not know, by the platform they came from",
        ["platform"],
        registry=REGISTRY,
    ),
    platform=Platform,
)


def bind_topics(names: Iterable[str]) -> None:
    """Fix the topic labels to the app's topics (their names hold the app id)."""
    names = list(names)
    events_in.allow(topic=names)
    dead_letters.allow(origin=names)


class TopicPartition(Hashable, Protocol):
    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


TP = TypeVar("TP", bound=TopicPartition)


class Consumer(Protocol[TP]):
    """What the lag needs of Faust's consumer: both calls answer without waiting."""

    def assignment(self) -> Iterable[TP]: ...

    def highwater(self, tp: TP) -> int | None: ...


class ConsumerLag:
    """``tillsync_consumer_lag_records``: per partition assigned at scrape time, the records
    between the end of the partition and the next one this worker has to process.

    Built when scraped, from the consumer's current assignment: a partition that moved to
    another worker has no series here. The offsets come from three places:

    - ``processed``: the offset of each record every stream of the worker is done with (the
      app's sensor calls it from Faust's ``on_message_out``). Faust's public API has no
      committed offset; this is what the next commit will be made of, so it is at least as new.
    - ``refresh``: what needs a request, cached by a short timer: the end offsets asked of the
      broker (the consumer's own high watermark stands still while Faust pauses a partition)
      and the consumer's positions.
    - the consumer's high watermark, read when scraped.

    Until this worker has processed a record of a partition, the position stands in: right
    after the assignment it is the committed offset, then it runs ahead of the processing by
    what Faust has fetched and not handed to a stream yet.
    """

    name = "tillsync_consumer_lag_records"
    documentation = "Records between the end of an assigned partition and the next to process"

    def __init__(self) -> None:
        self._consumer: Consumer[Any] | None = None
        self._counted: Callable[[str], bool] = lambda topic: True
        self._done: dict[TopicPartition, int] = {}
        self._ends: dict[TopicPartition, int] = {}
        self._positions: dict[TopicPartition, int] = {}

    def attach(self, consumer: Consumer[Any], counted: Callable[[str], bool] | None = None) -> None:
        """Read lag from ``consumer``, for the topics ``counted`` accepts (those whose offsets
        are committed: not the tables' changelogs)."""
        self._consumer = consumer
        if counted is not None:
            self._counted = counted

    def processed(self, tp: TopicPartition, offset: int) -> None:
        # per record, on the worker's hot path: one comparison and one store
        if offset >= self._done.get(tp, -1):
            self._done[tp] = offset + 1

    def refresh(self, ends: Mapping[TP, int], positions: Mapping[TP, int]) -> None:
        self._ends = {tp: offset for tp, offset in ends.items()}
        self._positions = {tp: offset for tp, offset in positions.items()}

    def forget_all(self) -> None:
        """The partitions are taken away: what this worker knew of one is stale if it comes
        back after another worker had it."""
        self._done.clear()
        self._ends.clear()
        self._positions.clear()

    def lag(self) -> dict[TopicPartition, int]:
        consumer = self._consumer
        if consumer is None:
            return {}
        try:
            assigned = [tp for tp in consumer.assignment() if self._counted(tp.topic)]
        except Exception:  # not started, or stopping: no partitions to speak for
            return {}
        out: dict[TopicPartition, int] = {}
        for tp in assigned:
            try:
                seen = consumer.highwater(tp)
            except Exception:  # revoked between the two calls
                seen = None
            ends = [e for e in (seen, self._ends.get(tp)) if e is not None]
            done = self._done.get(tp, self._positions.get(tp))
            if ends and done is not None:
                out[tp] = max(0, max(ends) - done)
        return out

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.name, self.documentation, labels=["topic", "partition"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=["topic", "partition"])
        for tp, records in sorted(self.lag().items(), key=lambda i: (i[0].topic, i[0].partition)):
            family.add_metric([tp.topic, str(tp.partition)], records)
        yield family


consumer_lag = ConsumerLag()
REGISTRY.register(consumer_lag)

pickup_orders = Counter(
    "tillsync_pickup_orders_total",
    "Pickup orders made, found made before, cancelled or left, in Sitoo",
    ["action", "outcome"],
    registry=REGISTRY,
)
# a pickup's steps at the store take minutes to days; its fulfilment in Shopify seconds
PICKUP_STEP_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200)


class PickupStepName(StrEnum):
    READY = "ready"  # its Sitoo order made, to ready at the till
    COLLECTED = "collected"  # ready, to handed over at the till
    FULFILLED = "fulfilled"  # handed over in Sitoo, to its fulfilment in Shopify


class PickupAge(StrEnum):
    UNDER_15M = "<15m"
    UNDER_1H = "15m-1h"
    UNDER_4H = "1h-4h"
    UNDER_1D = "4h-24h"
    OVER_1D = ">24h"


def pickup_age(seconds: float) -> PickupAge:
    for limit, age in (
        (900, PickupAge.UNDER_15M),
        (3600, PickupAge.UNDER_1H),
        (14400, PickupAge.UNDER_4H),
        (86400, PickupAge.UNDER_1D),
    ):
        if seconds < limit:
            return age
    return PickupAge.OVER_1D


pickup_step = Histogram(
    "tillsync_pickup_step_seconds",
    "A pickup's steps at its store, by step and store (Shopify location id): ready (Sitoo "
    "order made to ready at the till), collected (ready to handed over), fulfilled (handed "
    "over in Sitoo to its fulfilment in Shopify)",
    ["step", "location"],
    buckets=PICKUP_STEP_BUCKETS,
    registry=REGISTRY,
)
pickups_open = Fixed(
    Gauge(
        "tillsync_open_pickup_orders",
        "Pickups asked of Sitoo and not yet handed over or cancelled, by age since routed "
        "(this worker's partitions)",
        ["age"],
        registry=REGISTRY,
    ),
    age=PickupAge,
)
pickup_to_sitoo = Histogram(
    "tillsync_pickup_to_sitoo_seconds",
    "From the order flow asking for a pickup's Sitoo order to Sitoo confirming it, by store "
    "(Shopify location id)",
    ["location"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)


class ReturnOutcome(StrEnum):
    """What the returns flow made of one Sitoo credit order."""

    RETURNED = "returned"  # a Shopify return made (or found made), disposed, refunded, closed
    HELD = "held"  # the return made, its money left to finance (an exception says why)
    NOT_OURS = "not_ours"  # the return of a till sale: Sitoo's stock flow has it all
    FROM_SHOPIFY = "from_shopify"  # tillsync's own credit order of a Shopify refund
    BLIND = "blind"  # no original linked and no one online order fits: queued for a link
    DISMISSED = "dismissed"  # a blind return staff settled by hand: nothing written
    REFUSED = "refused"  # Shopify would not take it (an exception says why)


class BlindLink(StrEnum):
    """How a blind return found its online order."""

    AUTO = "auto"  # exactly one of the customer's orders fitted
    HAND = "hand"  # `tillsync returns link`


returns_blind_linked = Fixed(
    Counter(
        "tillsync_store_returns_blind_linked_total",
        "Blind returns (no receipt) linked to an online order and returned in Shopify, by how",
        ["how"],
        registry=REGISTRY,
    ),
    how=BlindLink,
)
returns_blind_queued = Gauge(
    "tillsync_blind_returns_waiting_orders",
    "Blind returns waiting for a link to an online order (`tillsync returns link`), on this "
    "worker's partitions",
    registry=REGISTRY,
)


class RefundPath(StrEnum):
    SHOPIFY = "shopify"  # Shopify refunded the original payment
    OUTSIDE_SHOPIFY = "outside_shopify"  # the till paid the customer back
    EXCHANGE = "exchange"  # the customer took other goods in the store for it


returns_total = Fixed(
    Counter(
        "tillsync_store_returns_total",
        "Sitoo credit orders (returns at a till) the returns flow finished, by outcome",
        ["outcome"],
        registry=REGISTRY,
    ),
    outcome=ReturnOutcome,
)
returns_refunded = Fixed(
    Counter(
        "tillsync_store_returns_refunded_total",
        "Money of store returns of online orders, in the shop's currency, by who paid it back "
        "(Shopify to the original payment, the till outside Shopify, or other goods in an "
        "exchange)",
        ["path"],
        registry=REGISTRY,
    ),
    path=RefundPath,
)


class CreditOutcome(StrEnum):
    """What became of one Shopify refund's Sitoo credit order."""

    MADE = "made"
    FOUND = "found"  # made before (a repeat, a replay, an answer lost)
    REFUSED = "refused"  # Sitoo would not take it (an exception says why)


refund_credits = Fixed(
    Counter(
        "tillsync_refund_credits_total",
        "Shopify refunds of orders handed over in Sitoo, booked as Sitoo credit orders",
        ["outcome"],
        registry=REGISTRY,
    ),
    outcome=CreditOutcome,
)
