"""The dead-letter topic: every message that could not be handled, with the reason and its
original bytes, so that nothing is lost and a fix can replay it."""

from __future__ import annotations

import logging
import time

from tillsync.streams import metrics, topics
from tillsync.streams.context import Context

log = logging.getLogger("tillsync.deadletter")


async def dead_letter(
    ctx: Context,
    *,
    origin: str,
    reason: str,
    value: bytes,
    headers: dict[str, bytes] | None = None,
    key: bytes | None = None,
) -> None:
    # the reason is ours, never the payload: payloads may hold personal data or secrets
    log.warning("dead letter from %s: %s", origin, reason)
    metrics.dead_letters.labels(origin=origin).inc()
    out_headers = dict(headers or {})
    out_headers[topics.HEADER_REASON] = reason.encode()[:1000]
    out_headers[topics.HEADER_ORIGIN_TOPIC] = origin.encode()
    out_headers[topics.HEADER_RECEIVED_AT] = out_headers.get(
        topics.HEADER_RECEIVED_AT, str(time.time()).encode()
    )
    await ctx.topic(topics.DEAD_LETTER).send(key=key, value=value, headers=out_headers)
