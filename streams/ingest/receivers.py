"""HTTP receivers for Shopify webhooks and Sitoo's Events SPI.

Both answer only once the record is in Kafka (so a 2xx means it is durable) and as soon as it
is (Sitoo blocks later events until we answer; Shopify retries after 5 s). Signatures and
Basic auth are checked before anything is written; malformed bodies are dead-lettered with
the reason and answered 400, so a sender's bug is visible and nothing crashes.

What a request becomes is decided by plain methods over its headers and body
(``ShopifyReceiver.verify``, ``SitooReceiver.verify``), which return a typed verdict; the web
views only read the request and carry the verdict out (``Receivers``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import faust
from faust.web import Request, Response, View

from tillsync.schemas.settings import Settings
from tillsync.schemas.sitoo import SitooEventBatch
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter

log = logging.getLogger("tillsync.receivers")

# Shopify sends these on every webhook; we keep them with the body for replay
SHOPIFY_HEADERS = (
    "X-Shopify-Topic",
    "X-Shopify-Hmac-Sha256",
    "X-Shopify-Shop-Domain",
    "X-Shopify-API-Version",
    "X-Shopify-Webhook-Id",
    "X-Shopify-Event-Id",
    "X-Shopify-Triggered-At",
)
SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
AUTHORIZATION_HEADER = "Authorization"

# aiohttp's `client_max_size`, which Faust leaves at its default: the web server answers 413
# itself when reading a larger body, so this is the same limit, stated where it is decided
MAX_BODY = 1024**2


def shopify_signature_ok(secret: bytes, body: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    digest = hmac.new(secret, body, hashlib.sha256).digest()
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(digest, given)


def basic_auth_ok(header: str | None, user: str, password: str) -> bool:
    if not header or not header.startswith("Basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    got_user, _, got_password = decoded.partition(":")
    return hmac.compare_digest(got_user, user) and hmac.compare_digest(got_password, password)


class Source(StrEnum):
    """The sender, as the `webhooks_rejected` metric labels it."""

    SHOPIFY = "shopify"
    SITOO = "sitoo"


class RejectReason(StrEnum):
    """Why a sender was not believed, as the `webhooks_rejected` metric labels it."""

    SIGNATURE = "signature"
    AUTH = "auth"


@dataclass(frozen=True)
class RawRecord:
    """One record for a raw topic: the sender's bytes, unchanged, and what we know of them."""

    key: bytes
    value: bytes
    headers: dict[str, bytes]


@dataclass(frozen=True)
class Accepted:
    """A verified request: its records go to the raw topic before it is answered 200."""

    records: list[RawRecord]


@dataclass(frozen=True)
class Refused:
    """Answered at once with `status`; nothing is written anywhere."""

    status: int
    error: str
    # set when the sender failed to prove who it is: those are counted, the rest are not
    rejected: RejectReason | None = None


@dataclass(frozen=True)
class Malformed:
    """A body from a verified sender that is not what it should be: dead-lettered with these
    headers and answered 400, so the sender's bug stays visible and replayable."""

    reason: str
    headers: dict[str, bytes] = field(default_factory=dict)


Verdict = Accepted | Refused | Malformed


def too_large(body: bytes, max_body: int) -> Refused | None:
    if len(body) > max_body:
        return Refused(status=413, error=f"body larger than {max_body} bytes")
    return None


def received_at(now: float) -> bytes:
    return repr(now).encode()


@dataclass(frozen=True)
class ShopifyReceiver:
    """Shopify's webhooks: HMAC-signed with the app secret, one JSON object each."""

    # without it no signature can be checked, so nothing is taken in
    secret: bytes | None
    max_body: int = MAX_BODY

    @classmethod
    def from_settings(cls, settings: Settings) -> ShopifyReceiver:
        secret = settings.shopify_app_secret
        return cls(secret=secret.get_secret_value().encode() if secret else None)

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> Verdict:
        """What this request becomes. `headers` are looked up by Shopify's spelling of their
        names (aiohttp's are case-insensitive; a plain dict must use those names)."""
        refused = too_large(body, self.max_body)
        if refused is not None:
            return refused
        if self.secret is None:
            return Refused(status=503, error="webhook secret not configured")
        if not shopify_signature_ok(self.secret, body, headers.get(SIGNATURE_HEADER)):
            return Refused(status=401, error="invalid signature", rejected=RejectReason.SIGNATURE)
        kept = {h: headers[h].encode() for h in SHOPIFY_HEADERS if h in headers}
        kept[topics.HEADER_RECEIVED_AT] = received_at(now)
        try:
            json.loads(body)
        except ValueError:
            return Malformed(reason="body is not JSON", headers=kept)
        # keyed by webhook id: a duplicate lands in the partition that saw the original
        key = headers.get(WEBHOOK_ID_HEADER, "").encode()
        return Accepted(records=[RawRecord(key=key, value=body, headers=kept)])


@dataclass(frozen=True)
class BasicCredentials:
    user: str
    password: str


@dataclass(frozen=True)
class SitooReceiver:
    """Sitoo's Events SPI: a JSON array of events, behind Basic auth when it is configured."""

    # None: Basic auth is off (both a user and a password turn it on)
    credentials: BasicCredentials | None
    max_body: int = MAX_BODY

    @classmethod
    def from_settings(cls, settings: Settings) -> SitooReceiver:
        user, password = settings.sitoo_events_username, settings.sitoo_events_password
        if user and password:
            return cls(BasicCredentials(user=user, password=password.get_secret_value()))
        return cls(credentials=None)

    def authorize(self, headers: Mapping[str, str]) -> Refused | None:
        """Checked before the body is read: an unknown sender gets 401 whatever it sends."""
        creds = self.credentials
        if creds is None or basic_auth_ok(
            headers.get(AUTHORIZATION_HEADER), creds.user, creds.password
        ):
            return None
        return Refused(status=401, error="unauthorized", rejected=RejectReason.AUTH)

    def accept(self, body: bytes, now: float) -> Verdict:
        """What the body of an authorized request becomes."""
        refused = too_large(body, self.max_body)
        if refused is not None:
            return refused
        received = {topics.HEADER_RECEIVED_AT: received_at(now)}
        try:
            raw_events = json.loads(body)
            batch = SitooEventBatch.parse_body(raw_events)
        except ValueError as exc:
            reason = f"not an Events SPI batch: {str(exc).splitlines()[0][:300]}"
            return Malformed(reason=reason, headers=received)
        # one record per event, each as Sitoo sent it, keyed by its id for deduplication
        return Accepted(
            records=[
                RawRecord(
                    key=event.event_id.encode(),
                    value=json.dumps(raw, separators=(",", ":")).encode(),
                    headers=dict(received),
                )
                for event, raw in zip(batch.events, raw_events, strict=True)
            ]
        )

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> Verdict:
        return self.authorize(headers) or self.accept(body, now)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


class Receivers:
    """Carries verdicts out: records to the raw topics, bad bodies to the dead letters."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.shopify = ShopifyReceiver.from_settings(ctx.settings)
        self.sitoo = SitooReceiver.from_settings(ctx.settings)
        self.raw_shopify = ctx.topic(topics.RAW_SHOPIFY_WEBHOOKS)
        self.raw_sitoo = ctx.topic(topics.RAW_SITOO_EVENTS)

    async def on_shopify(self, headers: Mapping[str, str], body: bytes) -> Answer:
        verdict = self.shopify.verify(headers, body, time.time())
        if isinstance(verdict, Accepted):
            await self._write(self.raw_shopify, verdict)
            return Answer(200, {"ok": True})
        return await self._turn_down(Source.SHOPIFY, self.raw_shopify, body, verdict)

    async def on_sitoo(self, body: bytes) -> Answer:
        """For a request that `sitoo.authorize` let through."""
        verdict = self.sitoo.accept(body, time.time())
        if isinstance(verdict, Accepted):
            await self._write(self.raw_sitoo, verdict)
            return Answer(200, {"ok": True, "received": len(verdict.records)})
        return await self._turn_down(Source.SITOO, self.raw_sitoo, body, verdict)

    def refuse(self, source: Source, refused: Refused) -> Answer:
        if refused.rejected is not None:
            metrics.webhooks_rejected.labels(source=source, reason=refused.rejected).inc()
        return Answer(refused.status, {"error": refused.error})

    async def _turn_down(
        self, source: Source, raw: faust.TopicT, body: bytes, verdict: Refused | Malformed
    ) -> Answer:
        if isinstance(verdict, Refused):
            return self.refuse(source, verdict)
        await dead_letter(
            self.ctx,
            origin=raw.get_topic_name(),
            reason=verdict.reason,
            value=body,
            headers=verdict.headers,
        )
        return Answer(400, {"error": verdict.reason})

    @staticmethod
    async def _write(raw: faust.TopicT, accepted: Accepted) -> None:
        # every record is handed to the producer before any is awaited: one request carries all
        futures = [
            await raw.send(key=r.key, value=r.value, headers=r.headers) for r in accepted.records
        ]
        for fut in futures:
            await fut


def register(ctx: Context) -> None:
    receivers = Receivers(ctx)

    @ctx.app.page("/webhooks/shopify")
    class ShopifyWebhooks(View):
        async def post(self, request: Request) -> Response:
            answer = await receivers.on_shopify(request.headers, await request.read())
            return self.json(answer.body, status=answer.status)

    @ctx.app.page("/webhooks/sitoo")
    class SitooEvents(View):
        async def post(self, request: Request) -> Response:
            refused = receivers.sitoo.authorize(request.headers)
            if refused is not None:
                answer = receivers.refuse(Source.SITOO, refused)
            else:
                answer = await receivers.on_sitoo(await request.read())
            return self.json(answer.body, status=answer.status)
