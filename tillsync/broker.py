"""A local single-node Apache Kafka broker (KRaft), run from its Maven Central jars.

No Docker engine is assumed: the jars of one pinned Kafka release are fetched once per machine
with ``mvn`` into a cache, a log dir is formatted on first use, and broker and controller run in
one small JVM. The data dir survives restarts; ``wipe`` is the only thing that deletes it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
# log4j-core comes with kafka-server; Kafka 4.1 logs through slf4j 1.7, so the binding is the
# slf4j 1.x one at log4j-core's version (Kafka's tarball ships it, its POM does not).
LOG4J_VERSION = "2.24.3"
HEAP = "-Xmx512m"

_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.tillsync</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{KAFKA_VERSION}</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{SCALA_VERSION}</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.kafkaorg.name = org.apache.kafka
logger.kafkaorg.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


class BrokerError(Exception):
    """The broker could not be fetched, formatted or started; the message says why."""


@dataclass(frozen=True)
class BrokerConfig:
    port: int = 9092
    controller_port: int | None = None
    data_dir: Path = Path("var/kafka")
    host: str = "127.0.0.1"

    @property
    def ctrl_port(self) -> int:
        return self.controller_port or self.port + 1

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class StartInfo:
    pid: int
    seconds_to_ready: float
    log_file: Path
    already_running: bool = False


@dataclass(frozen=True)
class Status:
    pid: int | None
    ready: bool
    bootstrap: str

    def describe(self) -> str:
        if self.pid is None:
            return "not running"
        state = "ready" if self.ready else "starting or not answering"
        return f"running (pid {self.pid}) on {self.bootstrap}: {state}"


def cache_dir() -> Path:
    """Per machine, not per checkout: a fresh clone reuses the jars already fetched."""
    root = os.environ.get("TILLSYNC_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path.home() / ".cache"
    if not os.environ.get("TILLSYNC_CACHE_DIR"):
        base = base / "tillsync"
    return base / f"kafka-{KAFKA_VERSION}"


def _need(tool: str, hint: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise BrokerError(f"`{tool}` was not found on PATH: {hint}")
    return found


def ensure_jars(echo: Callable[[str], None] = lambda _m: None) -> Path:
    """Fetch Kafka's jars with Maven once; return the folder that holds them."""
    libs = cache_dir() / "libs"
    marker = cache_dir() / ".complete"
    if marker.exists():
        return libs
    mvn = _need("mvn", "install Maven (Debian: apt-get install maven)")
    _need("java", "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)")
    cache_dir().mkdir(parents=True, exist_ok=True)
    (cache_dir() / "pom.xml").write_text(_POM)
    echo(f"fetching Apache Kafka {KAFKA_VERSION} jars with Maven (once per machine)...")
    proc = subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            "-f",
            str(cache_dir() / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise BrokerError("Maven could not fetch the Kafka jars:\n" + "\n".join(tail))
    if not any(libs.glob(f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar")):
        raise BrokerError(f"Maven finished but {libs} holds no kafka_{SCALA_VERSION} jar")
    marker.write_text(KAFKA_VERSION)
    return libs


def _java() -> str:
    java = _need("java", "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    major = _java_major(out)
    if major is not None and major < 17:
        raise BrokerError(f"Kafka {KAFKA_VERSION} needs Java 17 or newer; `java` is {major}")
    return java


def _java_major(version_output: str) -> int | None:
    for token in version_output.replace('"', " ").split():
        head = token.split(".")[0]
        if head.isdigit() and ("." in token or token.isdigit()):
            n = int(head)
            return int(token.split(".")[1]) if n == 1 else n
    return None


def _properties(cfg: BrokerConfig) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers={cfg.host}:{cfg.ctrl_port}",
            f"listeners=PLAINTEXT://{cfg.host}:{cfg.port},CONTROLLER://{cfg.host}:{cfg.ctrl_port}",
            f"advertised.listeners=PLAINTEXT://{cfg.host}:{cfg.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={cfg.log_dir.resolve()}",
            "num.partitions=1",
            "num.recovery.threads.per.data.dir=1",
            # one broker: internal topics cannot have three replicas
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            # consumers join at once instead of waiting 3 s for more members
            "group.initial.rebalance.delay.ms=0",
            # topics are declared by tillsync with their partition counts, never by accident
            "auto.create.topics.enable=false",
            "log.retention.hours=168",
            "",
        ]
    )


def _jvm(cfg: BrokerConfig, libs: Path) -> list[str]:
    logs = cfg.data_dir / "logs"
    return [
        _java(),
        HEAP,
        "-Xms128m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={logs.resolve()}",
        f"-Dlog4j2.configurationFile={(cfg.data_dir / 'log4j2.properties').resolve()}",
        "-cp",
        f"{libs.resolve()}/*",
    ]


def _read_pid(cfg: BrokerConfig) -> int | None:
    try:
        pid = int(cfg.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def answers_metadata(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when the broker answers a Metadata request with itself as a live broker."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000)
        )
        try:
            await asyncio.wait_for(admin.start(), timeout)
            await asyncio.wait_for(admin.list_topics(), timeout)
            return True
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError:
        return False
    return asyncio.run(probe())


def start(
    cfg: BrokerConfig,
    *,
    wipe: bool = False,
    timeout: float = 120.0,
    echo: Callable[[str], None] = lambda _m: None,
) -> StartInfo:
    began = time.monotonic()
    existing = _read_pid(cfg)
    if existing is not None:
        if wipe:
            raise BrokerError(
                f"the broker (pid {existing}) runs from {cfg.data_dir}: stop it first"
            )
        _wait_ready(cfg, existing, began, timeout)
        return StartInfo(existing, time.monotonic() - began, cfg.log_file, already_running=True)
    for port in (cfg.port, cfg.ctrl_port):
        if _port_taken(cfg.host, port):
            raise BrokerError(
                f"port {port} on {cfg.host} is taken by another process (another broker?); "
                f"stop it or choose other ports with --port/--controller-port"
            )
    if wipe and cfg.data_dir.exists():
        shutil.rmtree(cfg.data_dir)
    libs = ensure_jars(echo)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    (cfg.data_dir / "logs").mkdir(exist_ok=True)
    (cfg.data_dir / "log4j2.properties").write_text(_LOG4J2)
    props = cfg.data_dir / "server.properties"
    props.write_text(_properties(cfg))
    if not (cfg.log_dir / "meta.properties").exists():
        echo(f"formatting a new single-node KRaft log dir in {cfg.log_dir}")
        cluster_id = _cluster_id()
        proc = subprocess.run(
            [
                *_jvm(cfg, libs),
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(props),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise BrokerError(
                "formatting the log dir failed:\n" + (proc.stdout + proc.stderr)[-2000:]
            )
    out = open(cfg.data_dir / "logs" / "stdout.log", "ab")  # noqa: SIM115 - the JVM owns it
    child = subprocess.Popen(
        [*_jvm(cfg, libs), "kafka.Kafka", str(props)],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # outlives the CLI; `broker stop` ends it
    )
    out.close()
    cfg.pid_file.write_text(str(child.pid))
    _wait_ready(cfg, child.pid, began, timeout)
    return StartInfo(child.pid, time.monotonic() - began, cfg.log_file)


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _cluster_id() -> str:
    # KRaft cluster ids are 16 random bytes in URL-safe base64 without padding, as
    # `kafka-storage random-uuid` prints them. One in 64 starts with '-', which the format
    # tool takes for an option; Kafka's own Uuid.randomUuid draws again then, and so do we.
    import base64

    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _wait_ready(cfg: BrokerConfig, pid: int, began: float, timeout: float) -> None:
    deadline = began + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise BrokerError(
                f"the broker exited during start; see {cfg.data_dir / 'logs'}/stdout.log and "
                f"server.log (is port {cfg.port} or {cfg.ctrl_port} taken?)"
            ) from None
        if answers_metadata(cfg.bootstrap, timeout=2.0):
            return
        time.sleep(0.2)
    raise BrokerError(f"the broker did not answer within {timeout:.0f}s; see {cfg.log_file}")


def stop(data_dir: Path, timeout: float = 60.0) -> bool:
    cfg = BrokerConfig(data_dir=data_dir)
    pid = _read_pid(cfg)
    if pid is None:
        cfg.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        _reap(pid)
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    cfg.pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    # a broker started by this very process is our child: reap it so it does not linger
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def status(data_dir: Path, port: int = 9092) -> Status:
    cfg = BrokerConfig(port=port, data_dir=data_dir)
    pid = _read_pid(cfg)
    ready = pid is not None and answers_metadata(cfg.bootstrap)
    return Status(pid, ready, cfg.bootstrap)
