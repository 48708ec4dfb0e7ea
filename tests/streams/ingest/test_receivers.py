"""The receivers' verdicts over (headers, body), without a web server or a broker."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any, cast

import pytest

from tillsync.schemas.settings import Settings
from tillsync.streams import metrics, topics
from tillsync.streams.context import Context
from tillsync.streams.ingest.receivers import (
    MAX_BODY,
    Accepted,
    BasicCredentials,
    Malformed,
    Receivers,
    Refused,
    RejectReason,
    ShopifyReceiver,
    SitooReceiver,
)

FIXTURES = Path(__file__).parents[2] / "connectors" / "shopify" / "fixtures"
SECRET = b"test-app-secret"
SHOP = "tillsync-test.myshopify.com"
NOW = 1_700_000_000.25


def level_body() -> bytes:
    return json.dumps(
        json.loads((FIXTURES / "inventory_level.json").read_text())["inventory_level"]
    ).encode()


def signed(body: bytes, secret: bytes = SECRET, **extra: str) -> dict[str, str]:
    digest = hmac.new(secret, body, hashlib.sha256).digest()
    return {
        "X-Shopify-Topic": "inventory_levels/update",
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        **extra,
    }


def sitoo_event(event_id: str, event_type: str = "warehouse-transaction") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "event_date": 1_700_000_000,
        "account_id": 90316,
        "data": {"warehouse_id": 101},
    }


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- Shopify -----------------------------------------------------------------------------------


def test_a_validly_signed_webhook_is_one_record_keyed_by_webhook_id_with_its_headers() -> None:
    body = level_body()
    headers = signed(body, **{"X-Unrelated": "dropped"})
    verdict = ShopifyReceiver(secret=SECRET, shop=SHOP).verify(headers, body, NOW)
    assert isinstance(verdict, Accepted)
    [record] = verdict.records
    assert record.key == b"b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert record.value == body  # unchanged: the signature stays checkable on replay
    assert record.headers["X-Shopify-Topic"] == b"inventory_levels/update"
    assert record.headers["X-Shopify-Hmac-Sha256"] == headers["X-Shopify-Hmac-Sha256"].encode()
    assert record.headers[topics.HEADER_RECEIVED_AT] == repr(NOW).encode()
    assert "X-Unrelated" not in record.headers


def test_a_wrong_signature_is_401_and_counted_as_a_signature_rejection() -> None:
    body = level_body()
    verdict = ShopifyReceiver(secret=SECRET, shop=SHOP).verify(
        signed(body, secret=b"other"), body, NOW
    )
    assert verdict == Refused(401, "invalid signature", RejectReason.SIGNATURE)


def test_a_body_changed_after_signing_is_401() -> None:
    body = level_body()
    verdict = ShopifyReceiver(secret=SECRET, shop=SHOP).verify(signed(body), body + b" ", NOW)
    assert isinstance(verdict, Refused) and verdict.status == 401


@pytest.mark.parametrize("signature", [None, "", "not base64!"])
def test_a_missing_or_garbled_signature_header_is_401(signature: str | None) -> None:
    body = level_body()
    headers = signed(body)
    del headers["X-Shopify-Hmac-Sha256"]
    if signature is not None:
        headers["X-Shopify-Hmac-Sha256"] = signature
    verdict = ShopifyReceiver(secret=SECRET, shop=SHOP).verify(headers, body, NOW)
    assert verdict == Refused(401, "invalid signature", RejectReason.SIGNATURE)


def test_without_a_configured_secret_nothing_is_taken_in() -> None:
    body = level_body()
    verdict = ShopifyReceiver(secret=None, shop=SHOP).verify(signed(body), body, NOW)
    assert isinstance(verdict, Refused) and verdict.status == 503 and verdict.rejected is None


def test_a_signed_body_that_is_not_json_is_dead_lettered_and_answered_200() -> None:
    # Shopify retries a delivery that is not answered 2xx for hours and then removes the
    # subscription; a body that is not JSON will never parse, so once it is kept, it is taken
    body = b'{"phone": "070-123 45 67", '
    verdict = ShopifyReceiver(secret=SECRET, shop=SHOP).verify(signed(body), body, NOW)
    assert isinstance(verdict, Malformed)
    assert verdict.status == 200
    assert verdict.reason.startswith("body is not JSON: ")
    assert "070" not in verdict.reason  # where it broke, never what it said
    assert verdict.headers["X-Shopify-Webhook-Id"] == b"b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert verdict.headers["X-Shopify-Topic"] == b"inventory_levels/update"
    assert verdict.headers[topics.HEADER_RECEIVED_AT] == repr(NOW).encode()


@pytest.mark.parametrize("domain", ["other-shop.myshopify.com", "", None])
def test_a_signed_webhook_for_another_shop_is_401_and_counted_as_a_shop_rejection(
    domain: str | None,
) -> None:
    body = level_body()
    headers = signed(body)
    del headers["X-Shopify-Shop-Domain"]
    if domain is not None:
        headers["X-Shopify-Shop-Domain"] = domain
    verdict = ShopifyReceiver(secret=SECRET, shop=SHOP).verify(headers, body, NOW)
    assert verdict == Refused(401, "webhook for another shop", RejectReason.SHOP)


def test_the_shop_domain_is_compared_without_case() -> None:
    body = level_body()
    headers = signed(body, **{"X-Shopify-Shop-Domain": SHOP.upper()})
    assert isinstance(
        ShopifyReceiver(secret=SECRET, shop=SHOP).verify(headers, body, NOW), Accepted
    )


def test_a_wrong_signature_is_a_signature_rejection_whatever_the_shop() -> None:
    body = level_body()
    headers = signed(body, secret=b"other", **{"X-Shopify-Shop-Domain": "other.myshopify.com"})
    verdict = ShopifyReceiver(secret=SECRET, shop=SHOP).verify(headers, body, NOW)
    assert verdict == Refused(401, "invalid signature", RejectReason.SIGNATURE)


@pytest.mark.parametrize("topic", [None, ""])
def test_a_signed_webhook_without_a_topic_is_400(topic: str | None) -> None:
    body = level_body()
    headers = signed(body)
    del headers["X-Shopify-Topic"]
    if topic is not None:
        headers["X-Shopify-Topic"] = topic
    verdict = ShopifyReceiver(secret=SECRET, shop=SHOP).verify(headers, body, NOW)
    assert verdict == Refused(400, "no X-Shopify-Topic header")


def test_an_oversized_body_is_413_before_its_signature_is_checked() -> None:
    receiver = ShopifyReceiver(secret=SECRET, shop=SHOP, max_body=64)
    body = json.dumps({"padding": "x" * 100}).encode()
    verdict = receiver.verify(signed(body, secret=b"other"), body, NOW)
    assert isinstance(verdict, Refused) and verdict.status == 413 and verdict.rejected is None
    # at the limit it is still taken in
    exact = json.dumps({"p": "x" * (64 - len('{"p": ""}'))}).encode()
    assert len(exact) == 64
    assert isinstance(receiver.verify(signed(exact), exact, NOW), Accepted)


def test_the_default_limit_is_aiohttps_request_limit() -> None:
    assert MAX_BODY == 1024**2
    body = b"[" + b" " * MAX_BODY + b"]"
    verdict = ShopifyReceiver(secret=SECRET, shop=SHOP).verify(signed(body), body, NOW)
    assert isinstance(verdict, Refused) and verdict.status == 413


def test_the_shopify_secret_and_shop_come_from_the_settings() -> None:
    receiver = ShopifyReceiver.from_settings(
        Settings(shopify_app_secret="s3", shopify_shop="acme.myshopify.com")
    )
    assert receiver.secret == b"s3" and receiver.shop == "acme.myshopify.com"
    assert ShopifyReceiver.from_settings(Settings(shopify_app_secret=None)).secret is None


# -- Sitoo -------------------------------------------------------------------------------------


def test_sitoo_auth_off_takes_any_request_and_makes_one_record_per_event() -> None:
    receiver = SitooReceiver(credentials=None)
    events = [sitoo_event("e-1"), sitoo_event("e-2", "order")]
    body = json.dumps(events).encode()
    verdict = receiver.verify({}, body, NOW)
    assert isinstance(verdict, Accepted)
    assert [r.key for r in verdict.records] == [b"e-1", b"e-2"]
    assert [json.loads(r.value) for r in verdict.records] == events
    assert all(
        r.headers == {topics.HEADER_RECEIVED_AT: repr(NOW).encode()} for r in verdict.records
    )


def test_sitoo_auth_on_needs_the_right_basic_credentials() -> None:
    receiver = SitooReceiver(BasicCredentials(user="sitoo", password="pw"))
    body = json.dumps([sitoo_event("e-1")]).encode()
    assert isinstance(receiver.verify(basic("sitoo", "pw"), body, NOW), Accepted)
    unauthorized = Refused(401, "unauthorized", RejectReason.AUTH)
    for headers in (
        {},
        basic("sitoo", "wrong"),
        basic("other", "pw"),
        {"Authorization": "Bearer pw"},
        {"Authorization": "Basic not-base64!"},
    ):
        assert receiver.verify(headers, body, NOW) == unauthorized
        assert receiver.authorize(headers) == unauthorized


@pytest.mark.parametrize(
    "authorization",
    [
        basic("sïtoo", "pw"),
        basic("sitoo", "pä$$wörd"),
        basic("кассир", "пароль"),
        # Latin-1 bytes, as some clients encode them: not UTF-8 at all
        {"Authorization": "Basic " + base64.b64encode("sitoo:pä".encode("latin-1")).decode()},
        {"Authorization": "Basic sïtoo:pw"},
    ],
)
def test_non_ascii_basic_credentials_are_401_not_a_server_error(
    authorization: dict[str, str],
) -> None:
    receiver = SitooReceiver(BasicCredentials(user="sitoo", password="pw"))
    unauthorized = Refused(401, "unauthorized", RejectReason.AUTH)
    assert receiver.authorize(authorization) == unauthorized


def test_a_non_ascii_configured_password_takes_exactly_its_credentials() -> None:
    receiver = SitooReceiver(BasicCredentials(user="kassa", password="lösenord"))
    assert receiver.authorize(basic("kassa", "lösenord")) is None
    assert receiver.authorize(basic("kassa", "losenord")) is not None
    assert receiver.authorize(basic("kassa", "lösenord2")) is not None


def test_sitoo_auth_is_on_only_with_both_user_and_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the e2e suite names the demo config, whose events credentials would fill the gaps
    monkeypatch.delenv("TILLSYNC_CONFIG", raising=False)
    on = SitooReceiver.from_settings(
        Settings(sitoo_events_username="sitoo", sitoo_events_password="pw")
    )
    assert on.credentials == BasicCredentials(user="sitoo", password="pw")
    assert SitooReceiver.from_settings(Settings(sitoo_events_username="sitoo")).credentials is None
    assert SitooReceiver.from_settings(Settings(sitoo_events_password="pw")).credentials is None
    assert SitooReceiver.from_settings(Settings()).credentials is None


def test_an_unauthorized_sitoo_request_is_refused_whatever_its_body() -> None:
    receiver = SitooReceiver(BasicCredentials(user="sitoo", password="pw"), max_body=8)
    verdict = receiver.verify({}, b"x" * 100, NOW)
    assert isinstance(verdict, Refused) and verdict.status == 401


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"event_id": "e-1"}', json.dumps([{"event_id": "e-1"}]).encode()],
)
def test_a_body_that_is_not_an_events_batch_is_malformed(body: bytes) -> None:
    verdict = SitooReceiver(credentials=None).verify({}, body, NOW)
    assert isinstance(verdict, Malformed)
    assert verdict.status == 400
    assert verdict.reason.startswith("not an Events SPI batch: ")
    assert verdict.headers == {topics.HEADER_RECEIVED_AT: repr(NOW).encode()}


def test_an_events_batch_reason_names_the_fields_but_not_their_values() -> None:
    event = sitoo_event("e-1") | {"event_date": "anna@example.com"}
    verdict = SitooReceiver(credentials=None).verify({}, json.dumps([event]).encode(), NOW)
    assert isinstance(verdict, Malformed)
    assert "event_date" in verdict.reason and "anna@example.com" not in verdict.reason


def test_more_than_ten_events_is_not_a_batch() -> None:
    body = json.dumps([sitoo_event(f"e-{i}") for i in range(11)]).encode()
    assert isinstance(SitooReceiver(credentials=None).verify({}, body, NOW), Malformed)


def test_an_oversized_sitoo_body_is_413() -> None:
    body = json.dumps([sitoo_event("e-1")]).encode()
    verdict = SitooReceiver(credentials=None, max_body=len(body) - 1).verify({}, body, NOW)
    assert isinstance(verdict, Refused) and verdict.status == 413


# -- carried out: what reaches Kafka and the metrics ----------------------------------------------


class _Topic:
    """A topic as the receivers use it: each send is stored a moment after it is handed over."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[dict[str, Any]] = []
        self.stored: list[dict[str, Any]] = []

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, **record: Any) -> asyncio.Future[None]:
        self.sent.append(record)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def store() -> None:
            self.stored.append(record)
            done.set_result(None)

        asyncio.get_running_loop().call_later(0.01, store)
        return done


def _receivers(settings: Settings) -> tuple[Receivers, dict[str, _Topic]]:
    declared = {spec.suffix: _Topic(spec.name(settings.app_id)) for spec in topics.ALL}
    ctx = Context(app=cast(Any, None), settings=settings, declared=cast(Any, declared))
    return Receivers(ctx), declared


def _settings(**overrides: Any) -> Settings:
    given: dict[str, Any] = {
        "shopify_app_secret": SECRET.decode(),
        "shopify_shop": SHOP,
        "sitoo_events_username": "sitoo",
        "sitoo_events_password": "pw",
    }
    return Settings(**{**given, **overrides})


def _rejected(source: str, reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "tillsync_webhooks_rejected_total", {"source": source, "reason": reason}
    )
    return value or 0.0


async def test_a_webhook_that_is_not_json_is_answered_200_once_its_dead_letter_is_stored() -> None:
    receivers, declared = _receivers(_settings())
    body = b"{not json"
    answer = await receivers.on_shopify(signed(body), body)
    assert answer.status == 200
    dead = declared[topics.DEAD_LETTER.suffix]
    [record] = dead.stored  # stored before the answer, not only handed over
    assert record["value"] == body
    assert record["headers"]["X-Shopify-Webhook-Id"] == b"b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert record["headers"][topics.HEADER_REASON].startswith(b"body is not JSON: ")
    assert declared[topics.RAW_SHOPIFY_WEBHOOKS.suffix].sent == []


async def test_a_webhook_for_another_shop_is_counted_as_rejected() -> None:
    receivers, declared = _receivers(_settings())
    body = level_body()
    before = _rejected("shopify", "shop")
    answer = await receivers.on_shopify(
        signed(body, **{"X-Shopify-Shop-Domain": "evil.myshopify.com"}), body
    )
    assert answer.status == 401
    assert _rejected("shopify", "shop") == before + 1
    assert all(not topic.sent for topic in declared.values())


async def test_a_webhook_without_a_topic_is_400_and_kept_nowhere() -> None:
    receivers, declared = _receivers(_settings())
    body = level_body()
    headers = signed(body)
    del headers["X-Shopify-Topic"]
    answer = await receivers.on_shopify(headers, body)
    assert answer.status == 400
    assert all(not topic.sent for topic in declared.values())


def test_a_receiver_without_sitoo_credentials_warns_once_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="tillsync.receivers"):
        _receivers(_settings(sitoo_events_username=None, sitoo_events_password=None))
    [warning] = [r for r in caplog.records if r.name == "tillsync.receivers"]
    assert "without authentication" in warning.getMessage()
    assert "TILLSYNC_SITOO_EVENTS_USERNAME" in warning.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tillsync.receivers"):
        _receivers(_settings())
    assert not [r for r in caplog.records if r.name == "tillsync.receivers"]
