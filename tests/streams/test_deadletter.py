"""The dead-letter topic: the reason says what was wrong without repeating the payload, and the
original record's headers go along so that a fix can replay it."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest
from pydantic import BaseModel, ValidationError

from tillsync.schemas.locations import Location, LocationMap
from tillsync.schemas.settings import Settings
from tillsync.streams import topics
from tillsync.streams.context import Context
from tillsync.streams.deadletter import dead_letter, error_reason
from tillsync.streams.echoes import Echoes
from tillsync.streams.skus import SkuIndex
from tillsync.streams.stock.ledger import Invalid, SitooEventGate
from tillsync.streams.stock.shopify_webhooks import Malformed, RawWebhook, WebhookReader

# what a customer's order or a shop's payload may hold: none of it belongs in a log line
PHONE = "070-123 45 67"
EMAIL = "anna.svensson@example.com"


class Customer(BaseModel):
    phone: int
    email: int
    tags: list[int]


def validation_error() -> ValidationError:
    with pytest.raises(ValidationError) as err:
        Customer.model_validate({"phone": PHONE, "email": EMAIL, "tags": [1, "vip " + PHONE]})
    return err.value


def test_pydantics_own_text_repeats_the_input() -> None:
    # why the helper exists: str(ValidationError) quotes every input value
    assert PHONE in str(validation_error())


def test_a_validation_error_reason_names_fields_and_problems_but_no_input() -> None:
    reason = error_reason(validation_error())
    assert PHONE not in reason and EMAIL not in reason and "vip" not in reason
    assert "errors.pydantic.dev" not in reason
    assert "Customer" in reason
    assert "phone: Input should be a valid integer" in reason
    assert "tags.1: Input should be a valid integer" in reason


def test_other_errors_keep_their_own_text() -> None:
    with pytest.raises(json.JSONDecodeError) as err:
        json.loads(b"{" + PHONE.encode())
    reason = error_reason(err.value)
    assert reason.startswith("Expecting property name") and PHONE not in reason
    assert error_reason(KeyError("available")) == "'available'"


def test_a_long_reason_is_cut() -> None:
    assert len(error_reason(ValueError("x" * 5_000))) <= 500


# -- what the stock flow's readers dead-letter ----------------------------------------------------


def test_an_invalid_sitoo_event_is_dead_lettered_without_its_values() -> None:
    heard = SitooEventGate().hear(json.dumps({"event_id": "e-1", "event_date": EMAIL}).encode())
    assert isinstance(heard, Invalid)
    assert EMAIL not in heard.reason and "event_date" in heard.reason


def test_an_invalid_webhook_is_dead_lettered_without_its_values() -> None:
    locations = LocationMap(
        locations=[
            Location(name="Store", shopify_location_id=1, sitoo_store_id=1, sitoo_warehouse_id=1)
        ]
    )
    reader = WebhookReader(locations, SkuIndex(), Echoes())
    body = json.dumps({"inventory_item_id": EMAIL, "location_id": 1, "available": 3}).encode()
    headers = [("X-Shopify-Topic", b"inventory_levels/update"), ("X-Shopify-Webhook-Id", b"w")]
    verdict = reader.read(RawWebhook(body=body, headers=headers), 0.0)
    assert isinstance(verdict, Malformed)
    assert EMAIL not in verdict.reason and "inventory_item_id" in verdict.reason


# -- the record ----------------------------------------------------------------------------------


class _Topic:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.stored = asyncio.Event()

    async def send(self, **record: Any) -> asyncio.Future[None]:
        self.sent.append(record)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def store() -> None:
            await asyncio.sleep(0.01)
            self.stored.set()
            done.set_result(None)

        asyncio.get_running_loop().create_task(store())
        return done


def _context(topic: _Topic) -> Context:
    return Context(
        app=cast(Any, None), settings=Settings(), declared={topics.DEAD_LETTER.suffix: topic}
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Shopify-Topic": b"orders/create", topics.HEADER_RECEIVED_AT: b"17.5"},
        # as Faust hands a consumed record's headers over
        [("X-Shopify-Topic", b"orders/create"), (topics.HEADER_RECEIVED_AT, b"17.5")],
    ],
)
async def test_a_dead_letter_keeps_the_original_headers_and_adds_why(headers: Any) -> None:
    topic = _Topic()
    await dead_letter(
        _context(topic), origin="t.raw", reason="bad", value=b"{", headers=headers, key=b"k"
    )
    [record] = topic.sent
    assert record["key"] == b"k" and record["value"] == b"{"
    assert record["headers"] == {
        "X-Shopify-Topic": b"orders/create",
        topics.HEADER_RECEIVED_AT: b"17.5",
        topics.HEADER_REASON: b"bad",
        topics.HEADER_ORIGIN_TOPIC: b"t.raw",
    }


async def test_a_dead_letter_can_be_awaited_until_it_is_stored() -> None:
    topic = _Topic()
    await dead_letter(_context(topic), origin="t.raw", reason="bad", value=b"{", durable=True)
    assert topic.stored.is_set()
    topic = _Topic()
    await dead_letter(_context(topic), origin="t.raw", reason="bad", value=b"{")
    assert not topic.stored.is_set()  # handed to the producer; Faust flushes before commits
