"""Fault windows and latency, as pure logic and over HTTP."""

from __future__ import annotations

import random
import time

import httpx
import pytest

from tillsync_sim.sitoo import Faults, SitooSimulator

from .conftest import Api


def test_storm_windows_and_outages() -> None:
    faults = Faults()
    faults.update({"storm_every_s": 10, "storm_length_s": 2}, now=100.0)
    assert faults.throttled_for(100.5) == pytest.approx(1.5)
    assert faults.retry_after(100.5) == 2
    assert faults.throttled_for(103.0) == 0
    assert faults.throttled_for(111.0) == pytest.approx(1.0)
    faults.update({"outage_for_s": 5}, now=200.0)
    assert faults.in_outage(204.9) and not faults.in_outage(205.1)
    faults.update({"reset": True}, now=300.0)
    assert faults.throttled_for(300.5) == 0
    with pytest.raises(ValueError, match="unknown fault"):
        faults.update({"eror_rate": 1})
    faults.update({"latency_ms": [10, 20]})
    assert 0.010 <= faults.latency(random.Random(1)) <= 0.020


async def test_latency_is_added(sim: SitooSimulator, api: Api, control: httpx.AsyncClient) -> None:
    resp = await control.post("/faults", json={"latency_ms": [60, 60]})
    assert resp.json()["latency_ms"] == [60.0, 60.0]
    started = time.monotonic()
    await api.get("/sites/1/stores.json")
    assert time.monotonic() - started >= 0.06
    bad = await control.post("/faults", json={"nonsense": 1})
    assert bad.status_code == 400
