"""Shared fixtures: the real Kafka broker for the whole session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tillsync import broker as kb

REPO = Path(__file__).resolve().parents[1]
TEST_PORT = 19092


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real broker: the one `make test` started, or one started here for this session."""
    given = os.environ.get("TILLSYNC_TEST_BOOTSTRAP")
    if given:
        yield given
        return
    cfg = kb.BrokerConfig(port=TEST_PORT, data_dir=REPO / "var" / "test-kafka")
    already = kb.status(cfg.data_dir, cfg.port).ready
    if not already:
        kb.start(cfg, wipe=True, timeout=180)
    yield cfg.bootstrap
    # a broker another pytest session started (and still uses) is that session's to stop
    if not already:
        kb.stop(cfg.data_dir)


@pytest.fixture
def app_id() -> str:
    """A fresh app id: its own topics, consumer group and changelogs on the shared broker."""
    return f"t{uuid.uuid4().hex[:10]}"
