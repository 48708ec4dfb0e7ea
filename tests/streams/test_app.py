from __future__ import annotations

from pathlib import Path

import pytest

from tillsync.schemas.settings import load_settings
from tillsync.streams import commit_floor
from tillsync.streams.app import PRODUCER_BUFFER_MAX, build_app
from tillsync.streams.fetch_wait import FETCH_MAX_WAIT_MS


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("TILLSYNC_"):
            monkeypatch.delenv(name)


async def test_the_worker_consumer_long_polls_briefly(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, app_id="t-fetch")
    app = build_app(settings).app
    consumer_thread = app.consumer._thread  # the Faust service that owns the aiokafka consumer
    kafka_consumer = consumer_thread._create_worker_consumer(app.transport)
    # Faust's own value is 1,500 ms: every hop through Kafka then waited ~1.2 s at the median
    assert kafka_consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1500
    assert app.producer.buffer.max_messages == PRODUCER_BUFFER_MAX


async def test_the_worker_consumer_commits_no_record_still_in_work(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, app_id="t-floor")
    app = build_app(settings).app
    # the guard of tests/streams/test_commit_floor.py, on the worker's own consumer
    filter_offsets = type(app.consumer)._filter_committable_offsets
    assert filter_offsets is commit_floor._filter_committable_offsets
