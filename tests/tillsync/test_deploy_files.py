"""docker-compose.yml and the Grafana provisioning are consistent (Docker cannot run here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tillsync.streams import metrics

REPO = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_the_services_and_ports() -> None:
    services = _compose()["services"]
    assert set(services) >= {"kafka", "worker", "prometheus", "grafana", "shopify-sim", "sitoo-sim"}
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert "9092:9092" in services["kafka"]["ports"]
    assert "6066:6066" in services["worker"]["ports"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["worker"]["environment"]["TILLSYNC_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_every_file_the_compose_file_mounts_or_builds_exists() -> None:
    services = _compose()["services"]
    for name, svc in services.items():
        if "build" in svc:
            assert (REPO / svc["build"] / "Dockerfile").is_file(), name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
    config = services["worker"]["environment"]["TILLSYNC_CONFIG"].removeprefix("/app/")
    assert (REPO / config).is_file()
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY"):
            for src in line.split()[1:-1]:
                assert (REPO / src).exists(), f"Dockerfile copies missing {src}"


def test_prometheus_scrapes_the_worker_metrics_endpoint() -> None:
    prom = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    job = prom["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["worker:6066"]


def test_grafana_dashboards_use_only_metrics_the_worker_exports() -> None:
    provider = yaml.safe_load(
        (REPO / "grafana" / "provisioning" / "dashboards" / "tillsync.yaml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    exported = {m.name for m in metrics.REGISTRY.collect()}
    dashboards = list((REPO / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                for name in re.findall(r"tillsync_[a-z_]+", target["expr"]):
                    base = re.sub(r"_(bucket|sum|count|total)$", "", name)
                    assert base in exported, f"{path.name}: {panel['title']} uses unknown {name}"
