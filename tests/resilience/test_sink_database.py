"""The alert store (PostgreSQL) becomes unavailable while alerts flow, then comes back.

The database is made unavailable with ``ALTER DATABASE ... ALLOW_CONNECTIONS false`` plus
terminating its sessions (every new connection is refused, existing ones are gone: what a failed-over
or restarting server looks like to the sink), and later allowed again.

What it proves: the sink keeps running and retries the same batch with growing delays (0.5, 1, 2, 4 s,
seen in its log), ``custodes_sink_database_up`` goes 1 -> 0 -> 1 and
``custodes_sink_database_errors_total`` counts the failed attempts; afterwards the store holds exactly
the alerts offline replay finds for all the input (ids and folded counts), none lost, none twice.
"""

from __future__ import annotations

import re
import time

import pytest

from stream.store.alerts import AlertStore
from tests.stream.processes import wait_until

from .common import Feeder, Runner, expected_alerts, messages, stored, workload

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

PARTITIONS = 2


@pytest.fixture
def runner(kafka_broker, topic_prefix, tmp_path, postgres_url):
    r = Runner(kafka_broker.bootstrap, tmp_path, topic_prefix, postgres_url,
               {"partitions": PARTITIONS, "log_level": "info"})
    yield r
    r.stop_all()


def set_available(server, name: str, available: bool) -> None:
    with server.connect() as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if available else "false"}')
        if not available:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


def test_sink_retries_through_database_outage(runner, postgres_server, postgres_url, tmp_path):
    from sqlalchemy.engine import make_url

    dbname = make_url(postgres_url).database
    now = time.time()
    lines = workload(now, users=20, per_user=60)
    first, second = lines[: len(lines) // 2], lines[len(lines) // 2:]
    settings = runner.settings
    runner.start("sink")
    runner.start("worker")
    runner.wait_ready("worker")
    runner.wait_ready("sink")

    Feeder(runner.bootstrap, settings.topics.events, messages(first, PARTITIONS, 50), seconds=1).start().join()
    expected_first = expected_alerts(settings, first, tmp_path, now)
    store = AlertStore(postgres_url)
    try:
        wait_until(lambda: stored(store) == expected_first, 60, message="first half stored")
    finally:
        store.dispose()
    assert runner.total("custodes_sink_database_up", "sink") == 1

    set_available(postgres_server, dbname, False)
    try:
        Feeder(runner.bootstrap, settings.topics.events, messages(second, PARTITIONS, 50),
               seconds=1).start().join()
        wait_until(lambda: runner.total("custodes_sink_database_up", "sink") == 0, 60,
                   message="database_up == 0")
        wait_until(lambda: runner.total("custodes_sink_database_errors_total", "sink") >= 4, 30,
                   message="at least four failed attempts")
        assert runner.procs["sink"].poll() is None, runner.log("sink")
    finally:
        set_available(postgres_server, dbname, True)
    wait_until(lambda: runner.total("custodes_sink_database_up", "sink") == 1, 60, message="database_up == 1")

    delays = [float(x) for x in re.findall(r"retrying in ([0-9.]+) s", runner.log("sink"))]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0], delays
    expected = expected_alerts(settings, lines, tmp_path, now)
    store = AlertStore(postgres_url)
    try:
        last: list = [None]

        def settled():
            last[0] = stored(store)
            return last[0] == expected

        wait_until(settled, 60, message="stored alerts == replay's")
    finally:
        store.dispose()
    assert runner.procs["sink"].poll() is None
