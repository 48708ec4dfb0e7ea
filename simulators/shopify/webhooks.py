"""Webhook delivery as Shopify does it: signed raw body, Shopify's headers, 5 s timeout,
retries with exponential backoff, plus injected duplicates, delays and reordering."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from tillsync_sim.shopify.faults import FaultState
from tillsync_sim.shopify.model import WebhookSubscription

log = logging.getLogger(__name__)

ALL_TOPICS = (
    "orders/create",
    "orders/paid",
    "orders/updated",
    "orders/fulfilled",
    "orders/cancelled",
    "refunds/create",
    "inventory_levels/update",
    "customers/create",
    "customers/update",
    "products/create",
    "products/update",
    "fulfillment_orders/line_items_prepared_for_pickup",
    "fulfillment_orders/moved",
    "fulfillments/create",
    "fulfillments/update",
)

TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 1.0
MAX_RETRIES = 8


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Delivery:
    webhook_id: str
    event_id: str
    topic: str
    url: str
    body: bytes
    headers: dict[str, str]
    attempts: int = 0
    statuses: list[int | str] = field(default_factory=list)
    delivered: bool = False
    gave_up: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "webhook_id": self.webhook_id,
            "event_id": self.event_id,
            "topic": self.topic,
            "url": self.url,
            "attempts": self.attempts,
            "statuses": self.statuses,
            "delivered": self.delivered,
            "gave_up": self.gave_up,
        }


class WebhookDispatcher:
    def __init__(
        self,
        *,
        shop_domain: str,
        api_version: str,
        secret: str,
        faults: FaultState,
        subscriptions: dict[int, WebhookSubscription],
        retry_base_seconds: float = 1.0,
    ) -> None:
        self.shop_domain = shop_domain
        self.api_version = api_version
        self.secret = secret
        self.faults = faults
        self.subscriptions = subscriptions
        self.retry_base_seconds = retry_base_seconds
        self.deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._pending: list[tuple[Delivery, float]] = []

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
        self._session = aiohttp.ClientSession(timeout=timeout)
        pending, self._pending = self._pending, []
        for d, delay in pending:
            self._spawn(d, delay)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def in_flight(self) -> int:
        return len(self._tasks) + len(self._pending)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every scheduled delivery has succeeded or given up."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        subs = [s for s in self.subscriptions.values() if s.topic == topic]
        if not subs:
            return
        # serialised once: retries and duplicates carry the original bytes, as on Shopify
        body = json.dumps(payload, separators=(",", ":")).encode()
        event_id = str(uuid.uuid4())
        triggered = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for sub in subs:
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Shopify-Captain-Hook",
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": sign(body, self.secret),
                "X-Shopify-Shop-Domain": self.shop_domain,
                "X-Shopify-API-Version": self.api_version,
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Event-Id": event_id,
                "X-Shopify-Triggered-At": triggered,
            }
            if sub.name:
                headers["X-Shopify-Name"] = sub.name
            d = Delivery(
                webhook_id=headers["X-Shopify-Webhook-Id"],
                event_id=event_id,
                topic=topic,
                url=sub.callback_url,
                body=body,
                headers=headers,
            )
            self.deliveries.append(d)
            if self.faults.webhook_lost(topic):
                d.gave_up = True  # as Shopify does after its last retry
                continue
            copies = 2 if self.faults.webhook_duplicate() else 1
            for _ in range(copies):
                # drawn now, under the faults in force when the event happened
                delay = self.faults.webhook_delay_seconds()
                if self._session is None:
                    self._pending.append((d, delay))
                else:
                    self._spawn(d, delay)

    def _spawn(self, d: Delivery, delay: float) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(d, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, d: Delivery, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        for attempt in range(MAX_RETRIES + 1):
            d.attempts += 1
            status: int | str
            try:
                assert self._session is not None
                async with self._session.post(d.url, data=d.body, headers=d.headers) as resp:
                    await resp.read()
                    status = resp.status
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                status = type(exc).__name__
            d.statuses.append(status)
            if isinstance(status, int) and 200 <= status < 300:
                d.delivered = True
                return
            if attempt == MAX_RETRIES:
                break
            await asyncio.sleep(self.retry_base_seconds * (2**attempt))
        d.gave_up = True
        log.warning("webhook %s to %s gave up after %d attempts", d.topic, d.url, d.attempts)
