"""A REAL Prometheus scraping a REAL Custodes worker, sink and review app, fed with events through a real
Kafka broker, with a reviewer logging in and opening an alert.

Every PromQL expression of the dashboards and the alert rules is sent to Prometheus' HTTP API and must be
valid, and every dashboard query (pipeline, detections, review, retention) must return data.

Needs ``prometheus`` (Debian package ``prometheus``) and the session's Kafka broker (tests/harness/kafka.py);
without them the test is skipped locally and FAILS under CI=true.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from stream.contract.settings import REPO_CONFIG

from ..harness.ports import HOST, free_ports
from ..harness.services import tail
from .common import (
    DASHBOARD_UIDS,
    REPO,
    RULES,
    concrete,
    dashboard_queries,
    rule_queries,
    tool,
)

pytestmark = pytest.mark.kafka

QUERIES = [(name, concrete(expr)) for uid in DASHBOARD_UIDS for name, expr in dashboard_queries(uid)]
QUERIES += rule_queries()
MUST_HAVE_DATA = [(n, concrete(e)) for uid in DASHBOARD_UIDS for n, e in dashboard_queries(uid)]
USERS = ("u1", "u2", "u3", "u4")
START_TIMEOUT = float(os.environ.get("CUSTODES_DEPLOY_TEST_TIMEOUT", "150"))


@dataclass
class Stack:
    prometheus: str
    worker: int
    sink: int
    logs: dict[str, Path]
    fed: int

    def query(self, expr: str) -> tuple[int, dict[str, Any]]:
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, orjson.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, orjson.loads(exc.read() or b"{}")

    def value(self, expr: str) -> float | None:
        status, body = self.query(expr)
        result = body.get("data", {}).get("result", []) if status == 200 else []
        return float(result[0]["value"][1]) if result else None

    def api(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.prometheus}{path}", timeout=10) as resp:
            return orjson.loads(resp.read())["data"]

    def diagnostics(self) -> str:
        return "\n".join(f"--- {name} log ---\n{tail(path)}" for name, path in self.logs.items())


def wait_for(what: str, check: Callable[[], bool], timeout: float, stack: Stack | None = None,
             procs: dict[str, subprocess.Popen] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in (procs or {}).items():
            if proc.poll() is not None:
                logs = stack.diagnostics() if stack else ""
                pytest.fail(f"{name} exited with code {proc.returncode} while waiting for {what}\n{logs}")
        try:
            if check():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    logs = stack.diagnostics() if stack else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def isolated_config(prefix: str, app_id: str) -> str:
    """config/custodes.toml with unique topic names and app id (the rest as shipped)."""
    text = REPO_CONFIG.read_text()
    text = re.sub(r"(?m)^app_id\s*=.*\n", "", text)
    text = re.sub(r"(?m)^\[custodes\]\s*$", f'[custodes]\napp_id = "{app_id}"', text, count=1)

    def topics(m: re.Match[str]) -> str:
        return re.sub(r'(?m)^(\w+)\s*=\s*"([^"]*)"', lambda t: f'{t[1]} = "{prefix}{t[2]}"', m[0])

    text, n = re.subn(r"(?ms)^\[topics\]\s*$.*?(?=^\[|\Z)", topics, text)
    assert n == 1, "config/custodes.toml has no [topics] section"
    return text




def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event(user: str, kind: str, count: int, sensitivity: str = "high") -> bytes:
    return orjson.dumps({
        "@timestamp": now_iso(),
        "event": {"id": uuid.uuid4().hex},
        "user": {"id": user},
        "custodes": {"activity": kind, "record": {"count": count},
                     "dataset": {"name": "case-files", "sensitivity": sensitivity}},
    })


def feed(bootstrap: str, topic: str) -> int:
    """Two waves of events (bulk exports that raise alerts, ordinary access, invalid lines); returns lines."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5)
    lines = 0
    try:
        for wave in range(2):
            for user in USERS:
                batch = [event(user, "record_access", 1), event(user, "record_access", 2),
                         event(user, "export", 5000)]
                producer.send(topic, key=user.encode(), value=b"\n".join(batch))
                lines += len(batch)
            junk = [b'{"truncated": ', b"\xff\xfe\xfd", b"[1, 2]",
                    orjson.dumps({"@timestamp": now_iso(), "event": {"id": uuid.uuid4().hex}})]
            producer.send(topic, key=b"junk", value=b"\n".join(junk))
            lines += len(junk)
            producer.flush(timeout=30)
            if wave == 0:
                time.sleep(3)  # two waves: counters move between scrapes, so rates are not all zero
    finally:
        producer.close(timeout=10)
    return lines


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = tool("prometheus")
    broker = request.getfixturevalue("kafka_broker")  # skips locally / fails in CI when Kafka is missing
    bootstrap = broker.bootstrap
    tmp = tmp_path_factory.mktemp("deploy-live")
    unique = uuid.uuid4().hex[:8]
    prefix = f"t{unique}-"
    config = tmp / "custodes.toml"
    config.write_text(isolated_config(prefix, f"custodes-deploy-{unique}"))
    worker_port, sink_port, prom_port, review_port = free_ports(4)

    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        "CUSTODES_CONFIG": str(config),
        "CUSTODES_BROKER": bootstrap,
        "CUSTODES_DATA_DIR": str(tmp / "data"),
        "CUSTODES_WEB_BIND": HOST,
        "CUSTODES_WORKER_PORT": str(worker_port),
        "CUSTODES_SINK_PORT": str(sink_port),
        "CUSTODES_REVIEW_PORT": str(review_port),
        "CUSTODES_REVIEW_COOKIE_SECURE": "false",
        "CUSTODES_PARTITIONS": "2",
        "CUSTODES_LOG_LEVEL": "info",
    })
    logs = {name: tmp / f"{name}.log" for name in ("worker", "sink", "review", "prometheus")}
    procs: dict[str, subprocess.Popen] = {}

    def spawn(name: str, args: list[str], cwd: Path, environ: dict[str, str] | None) -> None:
        with logs[name].open("wb") as out:
            procs[name] = subprocess.Popen(args, cwd=cwd, env=environ, stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL)

    prom_cfg = tmp / "prometheus.yml"
    prom_cfg.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "custodes-worker", "static_configs": [{"targets": [f"{HOST}:{worker_port}"]}]},
            {"job_name": "custodes-sink", "static_configs": [{"targets": [f"{HOST}:{sink_port}"]}]},
            {"job_name": "custodes-review", "static_configs": [{"targets": [f"{HOST}:{review_port}"]}]},
        ],
    }))
    live = Stack(f"http://{HOST}:{prom_port}", worker_port, sink_port, logs, 0)
    try:
        (tmp / "data").mkdir()
        (tmp / "worker-cwd").mkdir()
        (tmp / "sink-cwd").mkdir()
        (tmp / "review-cwd").mkdir()
        spawn("worker", [sys.executable, "-m", "stream.cli", "worker"], tmp / "worker-cwd", env)
        spawn("sink", [sys.executable, "-m", "stream.cli", "sink"], tmp / "sink-cwd", env)
        spawn("review", [sys.executable, "-m", "stream.cli", "review"], tmp / "review-cwd", env)
        spawn("prometheus", [prometheus, f"--config.file={prom_cfg}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                             f"--web.listen-address={HOST}:{prom_port}", "--log.level=warn"], tmp, None)
        wait_for("Prometheus to be ready", lambda: http_status(f"{live.prometheus}/-/ready") == 200, 60,
                 live, procs)
        wait_for("the worker to be ready (partitions assigned)",
                 lambda: http_status(f"http://{HOST}:{worker_port}/ready") == 200, START_TIMEOUT, live, procs)
        wait_for("the sink to be ready", lambda: http_status(f"http://{HOST}:{sink_port}/ready") == 200,
                 START_TIMEOUT, live, procs)
        live.fed = feed(bootstrap, f"{prefix}custodes-audit-events")
        conditions = {
            "every event consumed": f"sum(custodes_events_consumed_total) >= {live.fed}",
            "alerts raised": "sum(custodes_alerts_raised_total) > 0",
            "alerts stored": "sum(custodes_alerts_stored_total) > 0",
            "dead letters": "sum(custodes_events_dead_lettered_total) > 0",
            "consumer lag reported": "count(custodes_consumer_lag_messages) > 0",
            "detector timings": "count(custodes_detector_seconds_total) > 0",
        }
        for what, expr in conditions.items():
            wait_for(f"{what} ({expr}) in Prometheus", lambda e=expr: live.value(e) is not None, START_TIMEOUT,
                     live, procs)
        wait_for("the review app to be ready", lambda: http_status(f"http://{HOST}:{review_port}/ready") == 200,
                 START_TIMEOUT, live, procs)
        review_session(env, f"http://{HOST}:{review_port}")
        for what, expr in {"a reviewer login": "sum(custodes_review_logins_total) > 0",
                           "a reviewer action": "sum(custodes_review_actions_total) > 0",
                           "a retention run": "count(custodes_retention_last_success_timestamp_seconds) > 0"}.items():
            wait_for(f"{what} ({expr}) in Prometheus", lambda e=expr: live.value(e) is not None, START_TIMEOUT,
                     live, procs)
        time.sleep(3)  # increase() over a range needs a few samples after the first
        yield live
    finally:
        for name in ("worker", "sink", "review", "prometheus"):
            proc = procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def review_session(env: dict[str, str], base: str) -> None:
    """A reviewer logs in and opens a stored alert, so the review app's counters have data."""
    import httpx2 as httpx

    from stream.contract.settings import load
    from stream.store.alerts import AlertStore

    subprocess.run([sys.executable, "-m", "stream.cli", "users", "add", "rev1", "--role", "reviewer",
                    "--password-stdin"], input="a long enough passphrase\n", text=True, env=env, check=True,
                   capture_output=True)
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
        page = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        done = client.post("/login", data={"csrf_token": token, "next": "/queue", "username": "rev1",
                                           "password": "a long enough passphrase"})
        assert done.status_code in (302, 303), done.text[:300]
        store = AlertStore(load(env=env).db_url)
        try:
            alert_id = store.list_alerts(limit=1)[0]["id"]
        finally:
            store.dispose()
        assert client.get(f"/alerts/{alert_id}").status_code == 200


def test_the_worker_sink_and_review_targets_are_up(stack):
    targets = stack.api("/api/v1/targets")["activeTargets"]
    health = {t["labels"]["job"]: t["health"] for t in targets}
    assert health == {"custodes-worker": "up", "custodes-sink": "up", "custodes-review": "up"}, targets


@pytest.mark.parametrize("name, expr", QUERIES, ids=[n for n, _ in QUERIES])
def test_every_dashboard_and_rule_query_is_valid(stack, name, expr):
    status, body = stack.query(expr)
    assert status == 200 and body.get("status") == "success", f"{name}: {expr}\n{body}"


@pytest.mark.parametrize("name, expr", MUST_HAVE_DATA, ids=[n for n, _ in MUST_HAVE_DATA])
def test_pipeline_and_detections_queries_return_data(stack, name, expr):
    status, body = stack.query(expr)
    assert status == 200, body
    assert body["data"]["result"], f"{name} returned no data: {expr}"


def test_counters_saw_the_fed_events(stack):
    assert stack.value("sum(custodes_events_consumed_total)") >= stack.fed
    assert stack.value('sum(custodes_events_dead_lettered_total{reason="invalid_json"})') >= 2
    assert stack.value('sum(custodes_events_dead_lettered_total{reason="missing_user"})') >= 2
    assert stack.value('sum(custodes_alerts_raised_total{detector="bulk_export"})') >= 1
    assert stack.value("min(custodes_sink_database_up)") == 1
    assert stack.value('up{job="custodes-worker"}') == 1


def test_alert_rules_load_and_evaluate_without_errors(stack):
    def evaluated() -> bool:
        groups = stack.api("/api/v1/rules")["groups"]
        return all(r.get("lastEvaluation", "").startswith("20") for g in groups for r in g["rules"])

    wait_for("every rule group to be evaluated", evaluated, 30)
    groups = stack.api("/api/v1/rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(rule_queries())
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad, bad
    firing = {r["name"] for r in rules if r.get("state") == "firing"}
    # nothing about the running processes may fire
    assert not firing & {"CustodesWorkerDown", "CustodesSinkDown", "CustodesSinkDatabaseDown",
                         "CustodesAuditChainBroken", "CustodesRetentionOverdue"}, firing
