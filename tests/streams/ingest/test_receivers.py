"""The receivers' verdicts over (headers, body), without a web server or a broker."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from tillsync.schemas.settings import Settings
from tillsync.streams import topics
from tillsync.streams.ingest.receivers import (
    MAX_BODY,
    Accepted,
    BasicCredentials,
    Malformed,
    Refused,
    RejectReason,
    ShopifyReceiver,
    SitooReceiver,
)

FIXTURES = Path(__file__).parents[2] / "connectors" / "shopify" / "fixtures"
SECRET = b"test-app-secret"
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
        "X-Shopify-Shop-Domain": "tillsync-test.myshopify.com",
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
    verdict = ShopifyReceiver(secret=SECRET).verify(headers, body, NOW)
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
    verdict = ShopifyReceiver(secret=SECRET).verify(signed(body, secret=b"other"), body, NOW)
    assert verdict == Refused(401, "invalid signature", RejectReason.SIGNATURE)


def test_a_body_changed_after_signing_is_401() -> None:
    body = level_body()
    verdict = ShopifyReceiver(secret=SECRET).verify(signed(body), body + b" ", NOW)
    assert isinstance(verdict, Refused) and verdict.status == 401


@pytest.mark.parametrize("signature", [None, "", "not base64!"])
def test_a_missing_or_garbled_signature_header_is_401(signature: str | None) -> None:
    body = level_body()
    headers = signed(body)
    del headers["X-Shopify-Hmac-Sha256"]
    if signature is not None:
        headers["X-Shopify-Hmac-Sha256"] = signature
    verdict = ShopifyReceiver(secret=SECRET).verify(headers, body, NOW)
    assert verdict == Refused(401, "invalid signature", RejectReason.SIGNATURE)


def test_without_a_configured_secret_nothing_is_taken_in() -> None:
    body = level_body()
    verdict = ShopifyReceiver(secret=None).verify(signed(body), body, NOW)
    assert isinstance(verdict, Refused) and verdict.status == 503 and verdict.rejected is None


def test_a_signed_body_that_is_not_json_is_malformed_with_its_headers_for_the_dead_letter() -> None:
    body = b"{not json"
    verdict = ShopifyReceiver(secret=SECRET).verify(signed(body), body, NOW)
    assert isinstance(verdict, Malformed)
    assert verdict.reason == "body is not JSON"
    assert verdict.headers["X-Shopify-Webhook-Id"] == b"b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert verdict.headers[topics.HEADER_RECEIVED_AT] == repr(NOW).encode()


def test_an_oversized_body_is_413_before_its_signature_is_checked() -> None:
    receiver = ShopifyReceiver(secret=SECRET, max_body=64)
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
    verdict = ShopifyReceiver(secret=SECRET).verify(signed(body), body, NOW)
    assert isinstance(verdict, Refused) and verdict.status == 413


def test_the_shopify_secret_comes_from_the_settings() -> None:
    assert ShopifyReceiver.from_settings(Settings(shopify_app_secret="s3")).secret == b"s3"
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


def test_sitoo_auth_is_on_only_with_both_user_and_password() -> None:
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
    assert verdict.reason.startswith("not an Events SPI batch: ")
    assert verdict.headers == {topics.HEADER_RECEIVED_AT: repr(NOW).encode()}


def test_more_than_ten_events_is_not_a_batch() -> None:
    body = json.dumps([sitoo_event(f"e-{i}") for i in range(11)]).encode()
    assert isinstance(SitooReceiver(credentials=None).verify({}, body, NOW), Malformed)


def test_an_oversized_sitoo_body_is_413() -> None:
    body = json.dumps([sitoo_event("e-1")]).encode()
    verdict = SitooReceiver(credentials=None, max_body=len(body) - 1).verify({}, body, NOW)
    assert isinstance(verdict, Refused) and verdict.status == 413
