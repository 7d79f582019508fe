"""Runs real Custodes processes (``python -m stream.cli worker|sink``) against a test broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from stream.contract.settings import REPO_CONFIG, Settings, load
from tests.harness.ports import free_port


def write_config(path: Path, prefix: str, **custodes: object) -> Path:
    """A copy of the shipped config with this test's own topics and app id."""
    raw = tomllib.loads(REPO_CONFIG.read_text())
    lines = ["[custodes]", f'app_id = "{prefix}custodes"', f'reference_topic_prefix = "{prefix}custodes-ref-"']
    for key, value in {**raw["custodes"], **custodes}.items():
        if key == "app_id":
            continue
        lines.append(f"{key} = {_toml(value)}")
    lines.append("[topics]")
    for key, value in raw["topics"].items():
        lines.append(f'{key} = "{prefix}{value}"')
    text = "\n".join(lines) + "\n"
    text += REPO_CONFIG.read_text().split("[limits]", 1)[1].join(["[limits]", ""])
    path.write_text(text)
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


REPO = Path(__file__).resolve().parents[2]


@dataclass
class Custodes:
    bootstrap: str
    workdir: Path
    prefix: str
    database_url: str
    extra: dict = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.worker_port = free_port()
        self.sink_port = free_port()
        self.config = write_config(self.workdir / "custodes.toml", self.prefix, **self.extra)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
        env.update({
            "CUSTODES_CONFIG": str(self.config),
            "CUSTODES_BROKER": self.bootstrap,
            "CUSTODES_DATA_DIR": str(self.workdir / "data"),
            "CUSTODES_DATABASE_URL": self.database_url,
            "CUSTODES_WORKER_PORT": str(self.worker_port),
            "CUSTODES_SINK_PORT": str(self.sink_port),
            "CUSTODES_WEB_BIND": "127.0.0.1",
            # the code under test is this checkout's, whichever copy is installed
            "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))),
        })
        return env

    @property
    def settings(self) -> Settings:
        return load(self.config, env=self.env)

    def start(self, name: str) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "stream.cli", name], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=self.workdir)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def wait_ready(self, name: str, timeout_s: float = 90) -> None:
        port = self.worker_port if name == "worker" else self.sink_port
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{name} not ready after {timeout_s} s:\n{self.log(name)}")

    def metrics(self, name: str = "worker") -> dict[tuple[str, tuple], float]:
        port = self.worker_port if name == "worker" else self.sink_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def total(self, metric: str, name: str = "worker") -> float:
        return sum(v for (n, _), v in self.metrics(name).items() if n == metric)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


def wait_until(check, timeout_s: float = 60, interval_s: float = 0.3, message: str = "condition"):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {message} (last: {last!r})")
