"""The dead-letter topic: every message that could not be handled, with the reason and its
original bytes and headers, so that nothing is lost and a fix can replay it.

A reason is read by people and by tools the payload is not meant for (logs, dashboards): it
says what was wrong, never the values. ``error_reason`` makes one from an exception."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from pydantic import ValidationError

from tillsync.streams import metrics, topics
from tillsync.streams.context import Context

log = logging.getLogger("tillsync.deadletter")

# a reason is a line for a person, not a report; a header holds at most the first 1000 bytes
REASON_MAX = 500

# Kafka record headers as they come: a mapping, or the (name, value) pairs Faust hands over
Headers = Mapping[str, bytes] | Iterable[tuple[str, bytes]]


def error_reason(exc: BaseException) -> str:
    """Why a record was refused, for a dead letter's reason or a log line, without its values.

    pydantic's own text quotes every input value (a customer's phone number, an address), so a
    `ValidationError` becomes where and what: ``Order: customer.phone: Input should be ...``.
    Other exceptions keep their text (JSON's names a position, a KeyError its key)."""
    if isinstance(exc, ValidationError):
        problems = []
        for error in exc.errors(include_input=False, include_url=False, include_context=False):
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"{where}: {error['msg']}" if where else error["msg"])
        text = f"{exc.title}: " + "; ".join(problems)
    else:
        text = str(exc)
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 1] + "…"


async def dead_letter(
    ctx: Context,
    *,
    origin: str,
    reason: str,
    value: bytes,
    headers: Headers | None = None,
    key: bytes | None = None,
    durable: bool = False,
) -> None:
    """Send one dead letter: `value` and `headers` as the record had them, and why.

    The send is handed to the producer, which Faust flushes before it commits the offsets of
    the records being processed. With `durable`, it returns once the broker has the record: for
    a sender that is answered as soon as its message is kept."""
    # the reason is ours, never the payload: payloads may hold personal data or secrets
    log.warning("dead letter from %s: %s", origin, reason)
    metrics.dead_letters.labels(origin=origin).inc()
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    out_headers = dict(pairs)
    out_headers[topics.HEADER_REASON] = reason.encode()[:1000]
    out_headers[topics.HEADER_ORIGIN_TOPIC] = origin.encode()
    out_headers[topics.HEADER_RECEIVED_AT] = out_headers.get(
        topics.HEADER_RECEIVED_AT, str(time.time()).encode()
    )
    sent = await ctx.topic(topics.DEAD_LETTER).send(key=key, value=value, headers=out_headers)
    if durable:
        await sent
