"""Real vendors' records through Apache Kafka: a mixed file of each format (m365, google-workspace, okta,
and ECS from Beats: Windows Security, Linux auth/auditd, web proxy, e-mail) ingested, read by the worker
and classified, with the activity of every event checked in the worker's metrics; refused records are
on the dead-letter topic with their field path, and ``custodes deadletters`` shows them redacted."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from stream.sources.ingest import ingest
from stream.worker.deadletters import read_topic
from tests.stream.processes import Custodes, wait_until
from tests.stream.sources.test_summary import EXPECTED

pytestmark = pytest.mark.kafka

SOURCES = Path(__file__).resolve().parents[3] / "tests" / "data" / "sources"
STAMP = {  # where each format keeps its time
    "m365.jsonl": ("CreationTime",), "google_workspace.jsonl": ("id", "time"), "okta.jsonl": ("published",),
}


def recent(name: str, now: float, tmp: Path) -> Path:
    """The fixture with its records re-dated into the last hour (the window counts back from now)."""
    path = STAMP.get(name, ("@timestamp",))
    lines = []
    for i, line in enumerate((SOURCES / name).read_bytes().splitlines()):
        record = orjson.loads(line)
        node = record
        for key in path[:-1]:
            node = node[key]
        when = time.gmtime(now - 3600 + i * 7)
        node[path[-1]] = time.strftime("%Y-%m-%dT%H:%M:%S", when) + ("" if name == "m365.jsonl" else "Z")
        lines.append(orjson.dumps(record))
    out = tmp / name
    out.write_bytes(b"\n".join(lines) + b"\n")
    return out


@pytest.fixture
def custodes(kafka_broker, topic_prefix, tmp_path):
    # the worker only: no store is read, so one run on SQLite (not the PostgreSQL/SQLite pair)
    c = Custodes(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/custodes.db",
                 {"partitions": 2})
    yield c
    c.stop_all()


def test_each_format_through_kafka_gets_its_activities(custodes, tmp_path: Path) -> None:
    now = time.time()
    files = [recent(name, now, tmp_path) for name in sorted(EXPECTED)]
    # one refused by the reader (no UserId), one the worker refuses (user.id is not a string)
    with files[[f.name for f in files].index("m365.jsonl")].open("ab") as f:
        f.write(b'{"CreationTime": "2026-01-01T00:00:00", "Operation": "FileDownloaded", "Workload": "OneDrive"}\n')
    with files[[f.name for f in files].index("ecs-email.jsonl")].open("ab") as f:
        f.write(orjson.dumps({"@timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
                              "user": {"id": ["not", "a", "string"]}, "event": {"category": ["email"]}}) + b"\n")
    settings = custodes.settings.model_copy(update={"org_domains": ("testsiem.onmicrosoft.com", "example.com")})
    custodes.start("worker")
    custodes.wait_ready("worker")

    counts = ingest(settings, files)
    expected: dict[str, int] = {}
    for kinds in EXPECTED.values():
        for kind, n in kinds.items():
            expected[kind] = expected.get(kind, 0) + n
    events = sum(expected.values())
    assert counts.events == events + 1  # the worker refuses the last one
    assert dict(counts.dead_lettered) == {"missing_user": 1}
    assert counts.summary.by_activity["mail_forward"] == 2  # ingest already says what the worker will see
    assert counts.summary.by_source["o365.audit"] == 14

    def settled() -> bool:
        return (custodes.total("custodes_events_processed_total")
                + custodes.total("custodes_events_dead_lettered_total")) == events + 1

    wait_until(settled, 120, message="every event processed or dead-lettered")
    m = custodes.metrics()
    processed = {dict(labels)["kind"]: v for (name, labels), v in m.items()
                 if name == "custodes_events_processed_total"}
    assert {k: int(v) for k, v in processed.items() if v} == expected
    assert m[("custodes_events_dead_lettered_total", (("reason", "wrong_type"),))] == 1
    assert custodes.total("custodes_events_unclassified_total") == 0  # the table covers every sample record

    letters, by_reason = read_topic(custodes.bootstrap, settings.topics.dead_letter, limit=10)
    assert dict(by_reason) == {"missing_user": 1, "wrong_type": 1}
    fields = {one.reason: one.field for one in letters}
    assert fields == {"missing_user": "UserId", "wrong_type": "user.id"}
    worker_letter = next(one for one in letters if one.reason == "wrong_type")
    assert "not" not in worker_letter.excerpt and '"user":{"id":["<3 chars>"' in worker_letter.excerpt
    reader_letter = next(one for one in letters if one.reason == "missing_user")
    assert reader_letter.source.endswith("m365.jsonl:15")

    # the command line: custodes deadletters
    shown = subprocess.run([sys.executable, "-m", "stream.cli", "deadletters", "--limit", "5"], env=custodes.env,
                           capture_output=True, text=True, timeout=120, check=True).stdout
    assert "missing_user at UserId  from " in shown and "wrong_type at user.id  from " in shown
    last = shown.rstrip().splitlines()[-1]
    assert last.startswith(f"2 dead letters on {settings.topics.dead_letter}: ")
    assert sorted(last.split(": ", 1)[1].split(", ")) == ["missing_user 1", "wrong_type 1"]
    assert custodes.stop("worker") == 0
