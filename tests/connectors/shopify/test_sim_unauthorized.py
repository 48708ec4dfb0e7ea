"""The simulator's spell of 401s: every Admin API call refused as Shopify refuses a token it
no longer accepts (revoked, rotated, the app uninstalled), for a window on its clock."""

from __future__ import annotations

from tillsync_sim.shopify import ManualClock, ShopifySimulator
from tillsync_sim.shopify.faults import Faults

from .conftest import GQL

# Shopify's own body for a token it does not accept
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


async def test_unauthorized_fault_answers_401_then_gives_way_to_an_outage(
    manual_sim: ShopifySimulator, manual_gql: GQL, clock: ManualClock
) -> None:
    http = manual_gql.http
    base = manual_sim.base_url
    # 401 for 2 s and a 503 outage for 5 s, both from now: the 401 comes first
    r = await http.post(
        f"{base}/_sim/faults", json={"unauthorized_seconds": 2, "outage_seconds": 5}
    )
    assert r.status_code == 200 and r.json()["unauthorized_seconds"] == 2
    refused = await manual_gql.raw("{ shop { id } }")
    assert refused.status_code == 401
    assert refused.json() == {"errors": INVALID_TOKEN}
    manual_sim.set_faults(latency_ms=0)  # changing another fault leaves the window as it was
    assert (await manual_gql.raw("{ shop { id } }")).status_code == 401
    clock.advance(2)  # the window follows the simulator's clock
    assert (await manual_gql.raw("{ shop { id } }")).status_code == 503
    clock.advance(3)
    assert (await manual_gql.raw("{ shop { id } }")).status_code == 200
    assert manual_sim.stats["unauthorized_401"] == 2 and manual_sim.stats["outage_503"] == 1


async def test_unauthorized_fault_is_cleared_and_validated(
    manual_sim: ShopifySimulator, manual_gql: GQL
) -> None:
    http = manual_gql.http
    base = manual_sim.base_url
    manual_sim.set_faults(unauthorized_seconds=60)
    assert (await manual_gql.raw("{ shop { id } }")).status_code == 401
    r = await http.delete(f"{base}/_sim/faults")
    assert r.json()["unauthorized_seconds"] == 0
    assert (await manual_gql.raw("{ shop { id } }")).status_code == 200
    bad = await http.post(f"{base}/_sim/faults", json={"unauthorized_seconds": -1})
    assert bad.status_code == 400
    assert Faults().unauthorized_seconds == 0
