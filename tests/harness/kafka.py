"""A real single-node Apache Kafka broker (KRaft, broker+controller in one JVM) for end-to-end tests.

Fixtures: ``kafka_broker`` (session) and ``topic_prefix`` (function). The broker jars come from
``$CUSTODES_KAFKA_HOME/lib`` (default ``~/.cache/custodes/kafka-3.9.1/lib``); if that is empty the harness
fills it with Maven from ``tests/kafka/pom.xml``.

Environment knobs: ``CUSTODES_KAFKA_HOME``, ``CUSTODES_KAFKA_JVM_OPTS`` (extra JVM options, appended),
``CUSTODES_KAFKA_START_TIMEOUT`` (seconds, default 90).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from .ports import HOST, free_ports, port_open
from .services import service_unavailable, tail

KAFKA_VERSION = "3.9.1"
POM = Path(__file__).resolve().parent.parent / "kafka" / "pom.xml"
DEFAULT_HEAP = "512m"
# Small and fast: serial GC (2 cores), no big initial heap.
DEFAULT_JVM_OPTS = ("-XX:+UseSerialGC", "-Xms64m", "-Djava.awt.headless=true")
# The short-lived StorageTool only needs the C1 compiler, which starts faster.
TOOL_JVM_OPTS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true")


class KafkaBrokerError(RuntimeError):
    """The broker could not be formatted, started or stopped."""


def kafka_home() -> Path:
    env = os.environ.get("CUSTODES_KAFKA_HOME")
    home = Path(env) if env else Path.home() / ".cache" / "custodes" / f"kafka-{KAFKA_VERSION}"
    return home.expanduser()


def _lib_complete(lib: Path) -> bool:
    return any(lib.glob("kafka_2.13-*.jar")) and any(lib.glob("slf4j-reload4j-*.jar"))


def find_java() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home, "bin", "java"), os.X_OK):
        return str(Path(java_home, "bin", "java"))
    return shutil.which("java")


def ensure_kafka_lib(home: Path | None = None) -> Path:
    """Return ``<home>/lib`` holding the broker jars; fill it with Maven if needed (skip/fail if impossible).

    Maven writes into a staging directory that is renamed into place, so an interrupted download never
    leaves a half-filled cache behind.
    """
    home = home or kafka_home()
    lib = home / "lib"
    if _lib_complete(lib):
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        service_unavailable(
            f"Kafka broker jars are not in {lib} and `mvn` is not on PATH to fetch them "
            f"(install Maven, or point CUSTODES_KAFKA_HOME at a directory whose lib/ holds kafka_2.13 jars)"
        )
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".lib-partial-", dir=home))
    try:
        cmd = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={staging}"]
        try:
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900, check=False
            )
        except subprocess.TimeoutExpired:
            service_unavailable(f"`{shlex.join(cmd)}` did not finish within 900 s")
        if proc.returncode != 0 or not _lib_complete(staging):
            output = (proc.stdout + proc.stderr).strip()[-4000:]
            service_unavailable(
                f"could not fetch the Kafka broker jars with `{shlex.join(cmd)}` (exit {proc.returncode}):\n{output}"
            )
        if not _lib_complete(lib):  # another session may have filled it meanwhile
            if lib.exists():  # an incomplete leftover, e.g. an interrupted `mvn` writing straight into lib/
                shutil.rmtree(lib)
            os.replace(staging, lib)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return lib


def _random_cluster_id() -> str:
    """Same format as ``kafka-storage random-uuid`` (URL-safe base64 of 16 random bytes), without the
    extra JVM start. Like Kafka's own generator, never returns an id starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cid.startswith("-"):
            return cid


_SETPRIV_PDEATHSIG: bool | None = None


def _pdeathsig_prefix() -> list[str]:
    """``setpriv --pdeathsig KILL`` so the JVM dies with the test process even if it is SIGKILLed.

    Only when spawned from the main thread: the parent-death signal fires when the spawning *thread* exits.
    """
    global _SETPRIV_PDEATHSIG
    if threading.current_thread() is not threading.main_thread():
        return []
    if _SETPRIV_PDEATHSIG is None:
        setpriv = shutil.which("setpriv")
        _SETPRIV_PDEATHSIG = False
        if setpriv:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                out = subprocess.run([setpriv, "--help"], capture_output=True, text=True, timeout=10).stdout
                _SETPRIV_PDEATHSIG = "--pdeathsig" in out
    return ["setpriv", "--pdeathsig", "KILL"] if _SETPRIV_PDEATHSIG else []


class KafkaBroker:
    """One KRaft broker+controller JVM bound to 127.0.0.1, with lifecycle controls for resilience tests.

    ``stop()``/``start()`` and ``kill()``/``start()`` keep the data directory and both ports.
    """

    def __init__(self, workdir: Path, lib: Path, java: str, *, heap: str = DEFAULT_HEAP) -> None:
        self.workdir = Path(workdir)
        self.lib = Path(lib)
        self.java = java
        self.heap = heap
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "server.properties"
        self.log4j_path = self.workdir / "log4j.properties"
        self.log_path = self.workdir / "broker.log"  # log4j output (WARN and up)
        self.stdout_path = self.workdir / "broker.stdout"  # JVM stdout/stderr (crashes, OOMs)
        self.port: int | None = None
        self.controller_port: int | None = None
        self.cluster_id: str | None = None
        self.last_start_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._frozen = False
        self._closed = False

    # -- state -------------------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise KafkaBrokerError("the broker has not been set up yet")
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def is_frozen(self) -> bool:
        return self._frozen and self.is_running

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = "frozen" if self.is_frozen else "running" if self.is_running else "stopped"
        return f"<KafkaBroker {self.bootstrap if self.port else '?'} pid={self.pid} {state}>"

    # -- setup ---------------------------------------------------------------------------------------------
    def launch(self, *, attempts: int = 3, timeout: float | None = None) -> None:
        """First start: pick free ports, write the config, format the storage, start, wait until ready.

        Retries with new ports (and a fresh data dir) if a port was taken between picking and binding.
        """
        for attempt in range(1, attempts + 1):
            self.port, self.controller_port = free_ports(2)
            if self.data_dir.exists():
                shutil.rmtree(self.data_dir)
            self._write_config()
            self._format()
            try:
                self.start(timeout=timeout)
                return
            except KafkaBrokerError:
                if attempt == attempts or "Address already in use" not in self._logs_tail():
                    raise
                self._terminate(timeout=10)

    def _write_config(self) -> None:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "auto.create.topics.enable": "true",
            "delete.topic.enable": "true",
            "offsets.topic.replication.factor": "1",
            # One partition instead of 50: the first consumer group does not wait for 50 log creations.
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Retention really runs during tests: check every second, delete soon after, and start the
            # LogManager tasks at once (the default first run is 30 s after start).
            "log.retention.check.interval.ms": "1000",
            "log.segment.delete.delay.ms": "500",
            "log.cleaner.backoff.ms": "1000",
            "log.initial.task.delay.ms": "0",
            # After kill(), a restarted broker cannot register until the controller expires the dead
            # incarnation's session (default 9 s): keep kill()+start() short without risking spurious fencing.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "3000",
            # Few threads: the test machine has two cores.
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "background.threads": "2",
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        self.log4j_path.write_text(
            "log4j.rootLogger=WARN, file\n"
            "log4j.appender.file=org.apache.log4j.FileAppender\n"
            f"log4j.appender.file.File={self.log_path}\n"
            "log4j.appender.file.Append=true\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        )

    def _jvm(self, *opts: str) -> list[str]:
        return [
            self.java,
            *opts,
            f"-Dlog4j.configuration=file:{self.log4j_path}",
            "-cp",
            f"{self.lib}/*",
        ]

    def _format(self) -> None:
        self.cluster_id = _random_cluster_id()
        cmd = [
            *self._jvm(*TOOL_JVM_OPTS),
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={self.cluster_id}",  # '=' form: ids may start with '-'
            "-c",
            str(self.config_path),
        ]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise KafkaBrokerError(
                f"formatting the KRaft storage failed (exit {proc.returncode}): {shlex.join(cmd)}\n"
                f"{(proc.stdout + proc.stderr).strip()[-4000:]}\n{self._logs_tail()}"
            )

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self, timeout: float | None = None) -> None:
        """Start the JVM (same data dir, same ports) and wait until it serves metadata."""
        if self._closed:
            raise KafkaBrokerError("the broker has been closed")
        if self.is_running:
            raise KafkaBrokerError(f"{self!r} is already running")
        if self.port is None or not self.config_path.exists():
            raise KafkaBrokerError("call launch() first")
        if timeout is None:
            timeout = float(os.environ.get("CUSTODES_KAFKA_START_TIMEOUT", "90"))
        extra = shlex.split(os.environ.get("CUSTODES_KAFKA_JVM_OPTS", ""))
        cmd = [
            *_pdeathsig_prefix(),
            *self._jvm(f"-Xmx{self.heap}", *DEFAULT_JVM_OPTS, *extra),
            "kafka.Kafka",
            str(self.config_path),
        ]
        began = time.monotonic()
        with self.stdout_path.open("ab") as out:
            out.write(f"\n=== {time.strftime('%H:%M:%S')} starting: {shlex.join(cmd)}\n".encode())
            out.flush()
            # Own session: a Ctrl-C in the terminal reaches pytest, whose finalizer then stops the broker.
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._frozen = False
        self.wait_ready(timeout)
        self.last_start_seconds = time.monotonic() - began

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the broker lists topics and every existing partition has a leader."""
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            if self._proc is None or self._proc.poll() is not None:
                rc = None if self._proc is None else self._proc.returncode
                raise KafkaBrokerError(
                    f"Kafka broker exited with code {rc} before it became ready\n{self._logs_tail()}"
                )
            if not self._frozen and port_open(self.port):
                try:
                    if self._all_partitions_led():
                        return
                    last_error = None
                except Exception as exc:  # any client error just means "not yet"
                    last_error = exc
            if time.monotonic() >= deadline:
                why = f" (last client error: {last_error!r})" if last_error else ""
                raise KafkaBrokerError(
                    f"Kafka broker on {self.bootstrap} not ready after {timeout:.0f} s{why}\n{self._logs_tail()}"
                )
            time.sleep(0.1)

    def _all_partitions_led(self) -> bool:
        with self.admin(request_timeout_ms=5000) as admin:
            topics = admin.list_topics()
            if not topics:
                return True
            for topic in admin.describe_topics(topics):
                if topic.get("error_code", 0) != 0:
                    return False
                if any(p.get("leader_id", p.get("leader", -1)) < 0 for p in topic.get("partitions", ())):
                    return False
            return True

    def stop(self, timeout: float = 60.0) -> None:
        """Graceful stop: SIGTERM and wait (a frozen broker is thawed first). Data and ports are kept."""
        if not self.is_running:
            return
        self.thaw()
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            raise KafkaBrokerError(
                f"Kafka broker did not stop within {timeout:.0f} s of SIGTERM; killed it\n{self._logs_tail()}"
            ) from None

    def kill(self) -> None:
        """Crash: SIGKILL and reap. Data and ports are kept; ``start()`` brings it back."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._frozen = False

    def freeze(self) -> None:
        """SIGSTOP: the broker keeps its sockets open but stops answering (a GC pause / hung host)."""
        if not self.is_running:
            raise KafkaBrokerError(f"{self!r} is not running")
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        """SIGCONT after ``freeze()``; returns at once (use ``wait_ready()`` to wait for recovery)."""
        if self._frozen and self.is_running:
            assert self._proc is not None
            self._proc.send_signal(signal.SIGCONT)
        self._frozen = False

    def restart(self, timeout: float | None = None) -> None:
        self.stop()
        self.start(timeout=timeout)

    def close(self) -> None:
        """End of session: always terminate the JVM (idempotent; also registered with atexit)."""
        if self._closed:
            return
        self._closed = True
        self._terminate(timeout=20)
        shutil.rmtree(self.data_dir, ignore_errors=True)  # keep the logs and configs for post-mortems

    def _terminate(self, timeout: float) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
        self._frozen = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _logs_tail(self, lines: int = 40) -> str:
        return (
            f"--- tail of {self.log_path} ---\n{tail(self.log_path, lines)}\n"
            f"--- tail of {self.stdout_path} ---\n{tail(self.stdout_path, lines)}"
        )

    # -- admin helpers -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def admin(self, **config: Any) -> Iterator[Any]:
        """A kafka-python ``KafkaAdminClient`` for this broker, closed on exit."""
        from kafka import KafkaAdminClient

        config.setdefault("client_id", "custodes-test-harness")
        client = KafkaAdminClient(bootstrap_servers=self.bootstrap, **config)
        try:
            yield client
        finally:
            client.close()

    def create_topic(self, name: str, partitions: int = 1, config: Mapping[str, Any] | None = None) -> None:
        """Create a topic (replication factor 1) and wait until every partition has a leader."""
        spec = {
            name: {
                "num_partitions": partitions,
                "replication_factor": 1,
                "configs": {k: str(v) for k, v in (config or {}).items()},
            }
        }
        with self.admin() as admin:
            admin.create_topics(spec, timeout_ms=30_000, wait_for_metadata=True)

    def topic_config(self, name: str) -> dict[str, str]:
        """All effective configs of a topic, as ``{key: value}`` (values as Kafka reports them)."""
        from kafka.admin import ConfigResource, ConfigResourceType

        with self.admin() as admin:
            result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all")
        return {key: entry.get("value") for key, entry in result["topic"][name].items()}


def start_broker(work: Path, heap: str = "1g") -> KafkaBroker:
    """A one-node Apache Kafka under ``work/kafka``, launched (for bench scripts; close() it)."""
    (work / "kafka").mkdir(parents=True, exist_ok=True)
    broker = KafkaBroker(work / "kafka", ensure_kafka_lib(), find_java() or "java", heap=heap)
    broker.launch()
    return broker


# -- fixtures -----------------------------------------------------------------------------------------------
_SESSION_BROKER: KafkaBroker | None = None


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KafkaBroker:
    """A real Kafka broker for the whole test session (``.bootstrap`` is ``127.0.0.1:PORT``)."""
    global _SESSION_BROKER
    java = find_java()
    if java is None:
        service_unavailable("no `java` on PATH (or $JAVA_HOME/bin): cannot start the Kafka broker")
    lib = ensure_kafka_lib()
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), lib, java)
    request.addfinalizer(broker.close)  # registered before the start, so a failed/interrupted start is cleaned
    atexit.register(broker.close)
    broker.launch()
    _SESSION_BROKER = broker
    return broker


@pytest.fixture(autouse=True)
def _kafka_broker_restored() -> Iterator[None]:
    """Safety net: a test that leaves the session broker frozen or stopped does not break the next test."""
    yield
    broker = _SESSION_BROKER
    if broker is None or broker.closed:
        return
    if broker.is_frozen:
        broker.thaw()
        broker.wait_ready()
    if not broker.is_running:
        broker.start()


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix (``t<uuid8>-``) so each test's topics never collide with another test's."""
    return f"t{uuid.uuid4().hex[:8]}-"
