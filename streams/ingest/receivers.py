"""HTTP receivers for Shopify webhooks and Sitoo's Events SPI.

Both answer only once the record is in Kafka (so a 2xx means it is durable) and as soon as it
is (Sitoo blocks later events until we answer; Shopify retries after 5 s). Signatures and
Basic auth are checked before anything is written; malformed bodies are dead-lettered with
the reason and answered 400, so a sender's bug is visible and nothing crashes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time

from faust.web import Request, Response, View

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


def register(ctx: Context) -> None:
    app = ctx.app
    settings = ctx.settings
    secret = (
        settings.shopify_app_secret.get_secret_value().encode()
        if settings.shopify_app_secret
        else None
    )
    raw_shopify = ctx.topic(topics.RAW_SHOPIFY_WEBHOOKS)
    raw_sitoo = ctx.topic(topics.RAW_SITOO_EVENTS)

    @app.page("/webhooks/shopify")
    class ShopifyWebhooks(View):
        async def post(self, request: Request) -> Response:
            body = await request.read()
            if secret is None:
                return self.json({"error": "webhook secret not configured"}, status=503)
            if not shopify_signature_ok(secret, body, request.headers.get("X-Shopify-Hmac-Sha256")):
                metrics.webhooks_rejected.labels(source="shopify", reason="signature").inc()
                return self.json({"error": "invalid signature"}, status=401)
            headers = {
                h: request.headers[h].encode() for h in SHOPIFY_HEADERS if h in request.headers
            }
            headers[topics.HEADER_RECEIVED_AT] = repr(time.time()).encode()
            webhook_id = request.headers.get("X-Shopify-Webhook-Id", "")
            try:
                json.loads(body)
            except ValueError:
                await dead_letter(
                    ctx,
                    origin=raw_shopify.get_topic_name(),
                    reason="body is not JSON",
                    value=body,
                    headers=headers,
                )
                return self.json({"error": "body is not JSON"}, status=400)
            # keyed by webhook id: a duplicate lands in the partition that saw the original
            fut = await raw_shopify.send(key=webhook_id.encode(), value=body, headers=headers)
            await fut
            return self.json({"ok": True})

    @app.page("/webhooks/sitoo")
    class SitooEvents(View):
        async def post(self, request: Request) -> Response:
            user, password = settings.sitoo_events_username, settings.sitoo_events_password
            if (
                user
                and password
                and not basic_auth_ok(
                    request.headers.get("Authorization"), user, password.get_secret_value()
                )
            ):
                metrics.webhooks_rejected.labels(source="sitoo", reason="auth").inc()
                return self.json({"error": "unauthorized"}, status=401)
            body = await request.read()
            received = repr(time.time()).encode()
            try:
                raw_events = json.loads(body)
                batch = SitooEventBatch.parse_body(raw_events)
            except ValueError as exc:
                reason = f"not an Events SPI batch: {str(exc).splitlines()[0][:300]}"
                await dead_letter(
                    ctx,
                    origin=raw_sitoo.get_topic_name(),
                    reason=reason,
                    value=body,
                    headers={topics.HEADER_RECEIVED_AT: received},
                )
                return self.json({"error": reason}, status=400)
            # one record per event, each as Sitoo sent it, keyed by its id for deduplication
            futures = [
                await raw_sitoo.send(
                    key=event.event_id.encode(),
                    value=json.dumps(raw, separators=(",", ":")).encode(),
                    headers={topics.HEADER_RECEIVED_AT: received},
                )
                for event, raw in zip(batch.events, raw_events, strict=True)
            ]
            for fut in futures:
                await fut
            return self.json({"ok": True, "received": len(futures)})
