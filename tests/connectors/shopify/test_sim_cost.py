"""Cost model and leaky bucket: THROTTLED as Shopify sends it, refill at the restore rate."""

from __future__ import annotations

import pytest
from graphql import OperationDefinitionNode, parse

from tillsync.connectors.shopify.documents import ALL_DOCUMENTS
from tillsync_sim.shopify import ManualClock, ShopifySimulator
from tillsync_sim.shopify.cost import LeakyBucket, operation_cost
from tillsync_sim.shopify.graphql_schema import admin_schema

from .conftest import GQL, ids, make_settings

# a mutation: flat 10 points, and actual == requested, so draining is exact
TAGS = ALL_DOCUMENTS["TAGS_ADD"]


def _cost(source: str, variables: dict[str, object] | None = None) -> int:
    op = parse(source).definitions[0]
    assert isinstance(op, OperationDefinitionNode)
    return operation_cost(admin_schema(), op, {}, variables or {})


def test_cost_rules() -> None:
    assert _cost("{ shop { id name } }") == 1
    assert _cost("{ shop { id plan { displayName } } }") == 2
    assert _cost("{ locations(first: 10) { nodes { id name } } }") == 2 + 10 * 1
    assert _cost("{ locations(first: 10) { edges { node { id address { city } } } } }") == 22
    assert _cost("query($n: Int!) { locations(first: $n) { nodes { id } } }", {"n": 3}) == 5
    assert _cost(TAGS) == 10
    assert _cost(ALL_DOCUMENTS["INVENTORY_SET_QUANTITIES"]) == 10


async def test_drain_then_throttled_then_recover(
    manual_sim: ShopifySimulator, manual_gql: GQL, clock: ManualClock
) -> None:
    customer = manual_sim.state.create_customer("a@example.com")
    variables = {"id": f"gid://shopify/Customer/{customer.id}", "tags": ["vip"]}
    calls = 0
    while True:
        answer = await manual_gql(TAGS, variables)
        if "errors" in answer:
            break
        calls += 1
        assert answer["extensions"]["cost"]["requestedQueryCost"] == 10
        assert calls <= 200
    assert calls == 200  # 2000 points / 10
    assert "data" not in answer
    assert answer["errors"] == [
        {
            "message": "Throttled",
            "extensions": {
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/rate-limits",
            },
        }
    ]
    cost = answer["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 10
    assert cost["actualQueryCost"] is None
    assert cost["throttleStatus"] == {
        "maximumAvailable": 2000.0,
        "currentlyAvailable": 0,
        "restoreRate": 100.0,
    }
    # 0.05 s restores 5 points: still not enough for a 10-point call
    clock.advance(0.05)
    again = await manual_gql(TAGS, variables)
    assert again["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert again["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 5
    clock.advance(0.05)
    ok = await manual_gql(TAGS, variables)
    assert "errors" not in ok
    assert ok["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0
    # a long pause refills to the bucket size, never beyond
    clock.advance(3600)
    full = await manual_gql(TAGS, variables)
    assert full["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 1990


async def test_query_refunds_unused_cost(manual_gql: GQL) -> None:
    answer = await manual_gql(ALL_DOCUMENTS["SHOP_AND_LOCATIONS"], {"first": 50})
    cost = answer["extensions"]["cost"]
    assert cost["requestedQueryCost"] > cost["actualQueryCost"] > 0
    assert cost["throttleStatus"]["currentlyAvailable"] == 2000 - cost["actualQueryCost"]


async def test_max_cost_exceeded(manual_gql: GQL) -> None:
    answer = await manual_gql(
        "{ products(first: 250) { nodes { id variants(first: 250) { nodes { id } } } } }"
    )
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["maxCost"] == 1000
    assert error["extensions"]["cost"] > 1000


@pytest.mark.parametrize(
    ("plan", "maximum", "rate"),
    [("standard", 2000, 100), ("advanced", 4000, 200), ("plus", 20000, 1000)],
)
def test_plans(plan: str, maximum: float, rate: float) -> None:
    sim = ShopifySimulator(make_settings(shopify_plan=plan), clock=ManualClock())
    status = sim.bucket.status()
    assert status["maximumAvailable"] == maximum
    assert status["restoreRate"] == rate


def test_bucket_never_negative_and_caps() -> None:
    clock = ManualClock()
    bucket = LeakyBucket(100, 10, clock)
    assert bucket.try_take(100)
    assert not bucket.try_take(1)
    clock.advance(0.5)
    assert bucket.status()["currentlyAvailable"] == 5
    bucket.refund(1000)
    assert bucket.status()["currentlyAvailable"] == 100


async def test_every_answer_carries_cost(manual_gql: GQL, manual_sim: ShopifySimulator) -> None:
    item = ids(manual_sim)["variants"]["SHIRT-S"]["inventory_item_id"]
    answer = await manual_gql(
        ALL_DOCUMENTS["INVENTORY_ITEM_LEVELS"], {"id": item, "first": 5, "names": ["available"]}
    )
    assert set(answer["extensions"]["cost"]) == {
        "requestedQueryCost",
        "actualQueryCost",
        "throttleStatus",
    }


async def test_faults_through_control_api(
    manual_sim: ShopifySimulator, manual_gql: GQL, clock: ManualClock
) -> None:
    http = manual_gql.http
    base = manual_sim.base_url
    r = await http.post(f"{base}/_sim/faults", json={"outage_seconds": 5})
    assert r.status_code == 200 and r.json()["outage_seconds"] == 5
    down = await manual_gql.raw("{ shop { id } }")
    assert down.status_code == 503
    clock.advance(5)  # the window follows the simulator's clock
    assert (await manual_gql.raw("{ shop { id } }")).status_code == 200

    await http.post(f"{base}/_sim/faults", json={"storm_429_seconds": 2})
    storm = await manual_gql.raw("{ shop { id } }")
    assert storm.status_code == 429 and storm.headers["Retry-After"] == "2"
    r = await http.delete(f"{base}/_sim/faults")
    assert r.json()["storm_429_seconds"] == 0
    assert (await manual_gql.raw("{ shop { id } }")).status_code == 200

    bad = await http.post(f"{base}/_sim/faults", json={"error_rate": 2})
    assert bad.status_code == 400


async def test_latency_fault(manual_sim: ShopifySimulator, manual_gql: GQL) -> None:
    import time

    manual_sim.set_faults(latency_ms=60)
    started = time.monotonic()
    await manual_gql("{ shop { id } }")
    assert time.monotonic() - started >= 0.06


async def test_unknown_api_version_is_404(manual_gql: GQL) -> None:
    r = await manual_gql.raw("{ shop { id } }", version="latest")
    assert r.status_code == 404


async def test_one_bulk_query_at_a_time(manual_sim: ShopifySimulator, manual_gql: GQL) -> None:
    manual_sim.resolvers.bulk_delay_seconds = 60  # on the manual clock: stays RUNNING
    run = ALL_DOCUMENTS["BULK_OPERATION_RUN_QUERY"]
    query = ALL_DOCUMENTS["BULK_INVENTORY_EXPORT_QUERY"]
    first = await manual_gql(run, {"query": query})
    assert first["data"]["bulkOperationRunQuery"]["bulkOperation"]["status"] == "RUNNING"
    second = await manual_gql(run, {"query": query})
    [err] = second["data"]["bulkOperationRunQuery"]["userErrors"]
    assert err["code"] == "OPERATION_IN_PROGRESS"
    invalid = await manual_gql(run, {"query": "{ nope }"})
    assert invalid["data"]["bulkOperationRunQuery"]["userErrors"]
