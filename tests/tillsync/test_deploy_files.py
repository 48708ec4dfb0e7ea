"""docker-compose.yml, the Dockerfile and the Grafana provisioning are consistent (Docker cannot
run here): every service has a healthcheck and starts after its dependencies are healthy, the
commands are real `tillsync` commands, and the production image installs its dependencies
before its source, runs as a non-root user and holds no simulator."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import click
import pytest
import yaml

from tillsync.cli import main
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
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    # the services use the internal listener; the published port advertises an address the
    # host can reach (config/demo.toml's), not a container name
    advertised = dict(
        reversed(entry.split("://")) for entry in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    assert advertised["localhost:9092"] == "HOST"
    assert services["worker"]["environment"]["TILLSYNC_KAFKA_BOOTSTRAP"] in advertised
    assert kafka["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert "kafka-data:/var/lib/kafka/data" in services["kafka"]["volumes"]


def test_every_file_the_compose_file_mounts_or_builds_exists() -> None:
    services = _compose()["services"]
    stages = _stages()
    for name, svc in services.items():
        if "build" in svc:
            build = svc["build"]
            assert (REPO / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()
            assert build["target"] in stages, f"{name} builds unknown stage {build['target']}"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
    for name in ("worker", "shopify-sim", "sitoo-sim"):
        svc = services[name]
        config = svc["environment"]["TILLSYNC_CONFIG"]
        mounted = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        assert (REPO / mounted[config]).is_file(), f"{name} reads {config}, which is not mounted"
    for stage in stages.values():
        for keyword, args in stage.lines:
            if keyword == "COPY" and "--from" not in args:
                for src in _copy_sources(args):
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


# -- healthchecks and start order -----------------------------------------------------------


def test_every_service_has_a_healthcheck() -> None:
    for name, svc in _compose()["services"].items():
        check = svc.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        test = check["test"]
        assert isinstance(test, list) and test[0] in {"CMD", "CMD-SHELL"}, name
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}: healthcheck without {key}"


def test_every_dependency_waits_until_healthy() -> None:
    services = _compose()["services"]
    for name, svc in services.items():
        depends = svc.get("depends_on", {})
        # the short form (a list) only waits for a container to start
        assert isinstance(depends, dict), f"{name}: depends_on must name conditions"
        for dep, how in depends.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert how == {"condition": "service_healthy"}, f"{name} -> {dep}: {how}"
    assert set(services["worker"]["depends_on"]) == {"kafka", "shopify-sim", "sitoo-sim"}


def test_the_healthchecks_ask_the_real_endpoints() -> None:
    services = _compose()["services"]
    worker = services["worker"]["healthcheck"]["test"]
    port = services["worker"]["environment"]["TILLSYNC_WEB_PORT"]
    assert worker == ["CMD", "tillsync-healthcheck", f"http://127.0.0.1:{port}/health"]
    for name in ("shopify-sim", "sitoo-sim"):
        command = services[name]["command"]
        sim_port = command[command.index("--port") + 1]
        assert f"{sim_port}:{sim_port}" in services[name]["ports"]
        assert services[name]["healthcheck"]["test"] == [
            "CMD",
            "tillsync-healthcheck",
            f"http://127.0.0.1:{sim_port}/_sim/health",
        ]
    kafka = services["kafka"]["healthcheck"]["test"]
    bootstrap = services["worker"]["environment"]["TILLSYNC_KAFKA_BOOTSTRAP"]
    assert kafka[1].endswith("kafka-broker-api-versions.sh")
    assert kafka[kafka.index("--bootstrap-server") + 1] == bootstrap


def _resolve(args: list[str]) -> click.Context:
    """Parse a command line as `tillsync` would, down to its leaf command, without running it:
    an unknown command or option, or a value of the wrong type, raises click's error."""
    assert args[0] == "tillsync"
    command: click.Command = main
    ctx: click.Context | None = None
    name, rest = "tillsync", args[1:]
    while isinstance(command, click.Group):
        ctx = click.Context(command, info_name=name, parent=ctx)
        name, rest = rest[0], rest[1:]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"no command {name!r} in {' '.join(args)}"
        command = sub
    return command.make_context(name, rest, parent=ctx)


def test_the_compose_commands_are_real_cli_commands() -> None:
    services = _compose()["services"]
    built = {name: svc for name, svc in services.items() if "build" in svc}
    assert set(built) == {"worker", "shopify-sim", "sitoo-sim"}
    for name, svc in built.items():
        ctx = _resolve(svc["command"])
        assert ctx.command.name in {"worker", "shopify", "sitoo"}, name
        if "--host" in svc["command"]:
            assert ctx.params["host"] == "0.0.0.0", f"{name} must listen beyond its container"
    shopify = _resolve(services["shopify-sim"]["command"]).params
    sitoo = _resolve(services["sitoo-sim"]["command"]).params
    assert shopify["webhook_urls"] == ("http://worker:6066/webhooks/shopify",)
    assert sitoo["events_url"] == "http://worker:6066/webhooks/sitoo"
    env = services["worker"]["environment"]
    assert env["TILLSYNC_SHOPIFY_URL"] == f"http://shopify-sim:{shopify['port']}"
    assert env["TILLSYNC_SITOO_BASE_URL"] == f"http://sitoo-sim:{sitoo['port']}"
    assert services["worker"]["build"]["target"] == "worker"
    assert {services[s]["build"]["target"] for s in ("shopify-sim", "sitoo-sim")} == {"sim"}


# -- the Dockerfile -------------------------------------------------------------------------


@dataclass
class _Stage:
    name: str
    base: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def uses(self) -> set[str]:
        """The stages this one is built from or copies/mounts from."""
        used = {self.base}
        for _, args in self.lines:
            used.update(re.findall(r"(?:--from=|\bfrom=)([^,\s]+)", args))
        return used


def _dockerfile_lines(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction: continuations joined, comments dropped."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        lines.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return lines


def _stages() -> dict[str, _Stage]:
    stages: dict[str, _Stage] = {}
    current: _Stage | None = None
    for keyword, args in _dockerfile_lines((REPO / "Dockerfile").read_text()):
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) > 2 and words[1].lower() == "as" else str(len(stages))
            current = stages[name] = _Stage(name, words[0])
        elif current is not None:
            current.lines.append((keyword, args))
    return stages


def _lineage(stages: dict[str, _Stage], name: str) -> list[_Stage]:
    """`name` and every stage it is built from, copies from or mounts."""
    seen: dict[str, _Stage] = {}
    todo = [name]
    while todo:
        stage = stages[todo.pop()]
        if stage.name not in seen:
            seen[stage.name] = stage
            todo.extend(s for s in stage.uses() if s in stages)
    return list(seen.values())


def _chain(stages: dict[str, _Stage], name: str) -> list[_Stage]:
    """The stages `name` is built FROM, the first first, ending with `name`."""
    chain = [stages[name]]
    while chain[0].base in stages:
        chain.insert(0, stages[chain[0].base])
    return chain


def _copy_sources(args: str) -> list[str]:
    words = [w for w in args.split() if not w.startswith("--")]
    return words[:-1]


SOURCE = {"tillsync", "streams", "connectors", "schemas", "simulators"}


def test_the_production_image_is_the_default_target() -> None:
    stages = _stages()
    production = list(stages.values())[-1]
    assert production.name == "worker"
    cmd = [args for keyword, args in production.lines if keyword == "CMD"]
    assert [json.loads(c) for c in cmd] == [["tillsync", "worker"]]
    health = [args for keyword, args in production.lines if keyword == "HEALTHCHECK"]
    assert len(health) == 1 and "tillsync-healthcheck" in health[0]
    assert "6066" in dict(production.lines)["EXPOSE"]


def test_the_images_run_as_a_non_root_user() -> None:
    stages = _stages()
    for name in ("worker", "sim"):
        users = [
            args for stage in _lineage(stages, name) for kw, args in stage.lines if kw == "USER"
        ]
        last = [args for kw, args in stages[name].lines if kw == "USER"]
        assert last, f"stage {name} sets no USER"
        assert last[-1].split(":")[0] not in {"root", "0"}, name
        assert users
    created = " ".join(args for _, args in stages["runtime"].lines)
    assert "useradd" in created and "--uid 10001" in created


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    stages = _stages()
    for stage in stages.values():
        copied = [
            src
            for built_on in _chain(stages, stage.name)
            for kw, args in built_on.lines
            if kw == "COPY" and "--from" not in args
            for src in _copy_sources(args)
        ]
        source = [i for i, src in enumerate(copied) if src.split("/")[0] in SOURCE]
        if source:
            assert "pyproject.toml" in copied[: source[0]], f"{stage.name} copies code first"
    # the runtime the worker runs on installs its dependencies from pyproject.toml alone
    runtime = stages["runtime"].lines
    steps = [(kw, args) for kw, args in runtime if kw in {"COPY", "RUN"}]
    copy_at = next(i for i, (kw, a) in enumerate(steps) if kw == "COPY" and "pyproject" in a)
    deps_at = next(i for i, (kw, a) in enumerate(steps) if kw == "RUN" and "pip install -r" in a)
    assert copy_at < deps_at
    assert all(
        src.split("/")[0] not in SOURCE
        for stage in _lineage(stages, "runtime")
        for kw, args in stage.lines
        if kw == "COPY"
        for src in _copy_sources(args)
    ), "the dependency layers must not depend on the source"


def test_the_production_stage_never_installs_the_simulators() -> None:
    stages = _stages()
    lineage = _lineage(stages, "worker")
    assert {s.name for s in lineage} >= {"worker", "runtime", "build"}
    for stage in lineage:
        for keyword, args in stage.lines:
            text = f"{keyword} {args}"
            for banned in ("simulators", "tillsync_sim", "tillsync-sim", "sim-build"):
                assert banned not in text, f"production stage {stage.name}: {text}"
    # while the simulators' image does have them
    sim = " ".join(args for s in _lineage(stages, "sim") for _, args in s.lines)
    assert "./simulators" in sim and "simulators/pyproject.toml" in sim


def test_the_dockerignore_keeps_what_the_dockerfile_copies_and_nothing_more() -> None:
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "a whitelist: .venv, var/ and .git never reach the build context"
    kept = [rule[1:] for rule in rules if rule.startswith("!")]
    for stage in _stages().values():
        for keyword, args in stage.lines:
            if keyword == "COPY" and "--from" not in args:
                for src in _copy_sources(args):
                    assert any(src == k or src.startswith(k + "/") for k in kept), src
    for rule in kept:
        assert (REPO / rule).exists(), f".dockerignore keeps missing {rule}"


# -- the scripts the images run -------------------------------------------------------------


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", REPO / "deploy" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pyproject_deps_lists_the_declared_dependencies() -> None:
    deps = _script("pyproject_deps")
    product = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert deps.dependencies(REPO / "pyproject.toml") == product
    sim = deps.dependencies(REPO / "simulators" / "pyproject.toml", ["tillsync"])
    assert sim and all(deps.requirement_name(r) != "tillsync" for r in sim)
    assert "aiohttp" in {deps.requirement_name(r) for r in sim}
    assert deps.requirement_name("Faust_Streaming[rocksdict]==0.15.3") == "faust-streaming"
    assert deps.requirement_name("pydantic>=2.10,<3") == "pydantic"


@pytest.fixture
def http_status() -> Iterator[tuple[str, list[int]]]:
    """A local HTTP server answering every GET with the status at the end of the list."""
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status[-1])
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", status
    server.shutdown()
    server.server_close()


def test_the_healthcheck_script_passes_on_2xx_only(
    http_status: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    health = _script("healthcheck")
    url, status = http_status
    assert health.main([f"{url}/health"]) == 0
    status.append(503)  # the worker while it starts or rebalances
    assert health.main([f"{url}/health"]) == 1
    status.append(200)
    monkeypatch.setenv("TILLSYNC_WEB_PORT", url.rsplit(":", 1)[1])
    assert health.default_url() == f"{url}/health"
    assert health.main([]) == 0
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert health.main([f"http://127.0.0.1:{closed}/health"]) == 1
