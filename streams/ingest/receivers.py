"""HTTP receivers for Shopify webhooks and Sitoo's Events SPI.

Both answer only once the record is in Kafka (so a 2xx means it is durable) and as soon as it
is (Sitoo blocks later events until we answer; Shopify retries after 5 s). Signatures and
Basic auth are checked before anything is written; malformed bodies are dead-lettered with
the reason (never their values), so a sender's bug is visible and nothing crashes. Sitoo is
answered 400 then; Shopify 200 once the dead letter is stored, since it retries a failed
delivery for hours, to no avail, and then removes the subscription.

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
from tillsync.streams.deadletter import dead_letter, error_reason

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
TOPIC_HEADER = "X-Shopify-Topic"
SHOP_HEADER = "X-Shopify-Shop-Domain"
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
    """Whether `header` carries exactly these credentials (UTF-8, as RFC 7617 has clients send
    them). Compared as bytes: `compare_digest` refuses str with non-ASCII characters."""
    if not header or not header.startswith("Basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:], validate=True)
    except (binascii.Error, ValueError):  # ValueError: a non-ASCII character in the header
        return False
    got_user, _, got_password = decoded.partition(b":")
    # both compared, whichever differs: the time taken tells nothing of which
    user_ok = hmac.compare_digest(got_user, user.encode())
    password_ok = hmac.compare_digest(got_password, password.encode())
    return user_ok and password_ok


class Source(StrEnum):
    """The sender, as the `webhooks_rejected` metric labels it."""

    SHOPIFY = "shopify"
    SITOO = "sitoo"


class RejectReason(StrEnum):
    """Why a sender was not believed, as the `webhooks_rejected` metric labels it."""

    SIGNATURE = "signature"
    AUTH = "auth"
    SHOP = "shop"  # signed, but for a shop that is not ours


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
    headers, so the sender's bug stays visible and replayable, then answered `status`."""

    reason: str
    headers: dict[str, bytes] = field(default_factory=dict)
    # 400 tells the sender its bug; 200 is for a sender that would retry what can never
    # succeed (Shopify, which removes a subscription whose deliveries keep failing)
    status: int = 400


Verdict = Accepted | Refused | Malformed


def too_large(body: bytes, max_body: int) -> Refused | None:
    if len(body) > max_body:
        return Refused(status=413, error=f"body larger than {max_body} bytes")
    return None


def received_at(now: float) -> bytes:
    return repr(now).encode()


@dataclass(frozen=True)
class ShopifyReceiver:
    """Shopify's webhooks: HMAC-signed with the app secret, one JSON object each, for our shop."""

    # without it no signature can be checked, so nothing is taken in
    secret: bytes | None
    # our shop's myshopify.com domain: an app's secret signs the webhooks of every shop that
    # installed it, so a valid signature alone does not say the webhook is about our stock
    shop: str
    max_body: int = MAX_BODY

    @classmethod
    def from_settings(cls, settings: Settings) -> ShopifyReceiver:
        secret = settings.shopify_app_secret
        return cls(
            secret=secret.get_secret_value().encode() if secret else None,
            shop=settings.shopify_shop,
        )

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
        if headers.get(SHOP_HEADER, "").strip().lower() != self.shop.strip().lower():
            # Another shop's webhook will never be ours, however often it comes. 401, not 2xx:
            # Shopify retries it, the delivery fails, and after its retries Shopify removes
            # the misdirected subscription, which is what should happen to it; meanwhile the
            # rejected metric shows it. (A 2xx would keep a wrong subscription alive unseen.)
            return Refused(status=401, error="webhook for another shop", rejected=RejectReason.SHOP)
        if not headers.get(TOPIC_HEADER):
            # every record downstream is routed by its topic: without one it would be dropped
            return Refused(status=400, error=f"no {TOPIC_HEADER} header")
        kept = {h: headers[h].encode() for h in SHOPIFY_HEADERS if h in headers}
        kept[topics.HEADER_RECEIVED_AT] = received_at(now)
        try:
            json.loads(body)
        except ValueError as exc:
            # Signed by Shopify, so a retry brings the same bytes: kept as a dead letter and
            # answered 200, rather than retried for hours until Shopify drops the subscription
            return Malformed(
                reason=f"body is not JSON: {error_reason(exc)}", headers=kept, status=200
            )
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
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            return Malformed(
                reason=f"not an Events SPI batch: {error_reason(exc)}", headers=received
            )
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
        if self.sitoo.credentials is None:
            # the stock flow refuses to start like this unless told to (load_runtime)
            log.warning(
                "the Sitoo Events receiver takes requests without authentication: anyone who "
                "can reach it can send events. Set TILLSYNC_SITOO_EVENTS_USERNAME and "
                "TILLSYNC_SITOO_EVENTS_PASSWORD, and the same credentials in Sitoo's Events SPI"
            )

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
        # stored before the answer: a 2xx says the message is kept, here as a dead letter
        await dead_letter(
            self.ctx,
            origin=raw.get_topic_name(),
            reason=verdict.reason,
            value=body,
            headers=verdict.headers,
            durable=True,
        )
        if verdict.status < 300:
            return Answer(verdict.status, {"ok": True, "dead_lettered": verdict.reason})
        return Answer(verdict.status, {"error": verdict.reason})

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
