from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tillsync import broker as kb


def test_java_major_version_is_read_from_both_styles() -> None:
    assert kb._java_major('openjdk version "17.0.15" 2025-04-15') == 17
    assert kb._java_major('java version "1.8.0_292"') == 8
    assert kb._java_major('openjdk version "21" 2023-09-19') == 21


def test_cluster_id_is_22_url_safe_characters() -> None:
    cid = kb._cluster_id()
    assert len(cid) == 22
    assert set(cid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_single_node_properties() -> None:
    props = kb._properties(kb.BrokerConfig(port=29092, data_dir=Path("/tmp/x")))
    lines = dict(line.split("=", 1) for line in props.splitlines() if line)
    assert lines["process.roles"] == "broker,controller"
    assert lines["offsets.topic.replication.factor"] == "1"
    assert lines["transaction.state.log.replication.factor"] == "1"
    assert lines["group.initial.rebalance.delay.ms"] == "0"
    assert lines["auto.create.topics.enable"] == "false"
    assert lines["controller.quorum.bootstrap.servers"] == "127.0.0.1:29093"


def test_missing_maven_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TILLSYNC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(kb.BrokerError, match="apt-get install maven"):
        kb.ensure_jars()


@pytest.mark.kafka
def test_status_of_the_running_test_broker(kafka_bootstrap: str) -> None:
    assert kb.answers_metadata(kafka_bootstrap)
    out = subprocess.run(
        [sys.executable, "-m", "tillsync.cli", "broker", "status", "--data-dir", "/nonexistent"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "not running" in out.stdout


def test_start_refuses_a_port_another_process_holds(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = kb.BrokerConfig(port=port, controller_port=port, data_dir=tmp_path / "k")
        with pytest.raises(kb.BrokerError, match=f"port {port} .* is taken"):
            kb.start(cfg)
    assert not (tmp_path / "k").exists()


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kafka's format tool reads an id starting with '-' as an option (1 format in 64 failed);
    # Kafka's own Uuid.randomUuid draws again in that case, and so must we
    import uuid

    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" + bytes(15))])
    monkeypatch.setattr(kb.uuid, "uuid4", lambda: next(draws))
    cid = kb._cluster_id()
    assert not cid.startswith("-")
    assert cid == "EAAAAAAAAAAAAAAAAAAAAA"
