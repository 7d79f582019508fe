"""The command line, in-process (click's runner); no broker needed for these commands."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.store.alerts import AlertStore
from tests.stream.events import T0, export, iso


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()
    env = {"CUSTODES_DATA_DIR": str(tmp_path / "data"), "CUSTODES_BROKER": "",
           "CUSTODES_DATABASE_URL": "", "CUSTODES_CONFIG": ""}

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return invoke


@pytest.fixture
def pseudo(tmp_path):
    """The review app's pseudonyms for the data directory the commands use."""
    from stream.contract.settings import Settings
    from stream.privacy.pseudonym import Pseudonymiser, load_key

    return Pseudonymiser(load_key(Settings(data_dir=tmp_path / "data")))


@pytest.fixture
def events_file(tmp_path):
    lines = [export("alice", T0 + i * 60, 80, event_id=f"a{i}") for i in range(3)]
    lines.append(export("bob", T0 - 800 * 86400, 5000, event_id="ancient"))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(d) for d in lines) + b'\n{"oops"\n')
    return path


def test_replay_writes_alerts_and_counts_everything(run, events_file, tmp_path, pseudo):
    out = tmp_path / "alerts.jsonl"
    result = run("replay", str(events_file), "--alerts-out", str(out), "--as-of", iso(T0 + 3600))
    alerts = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(a["detector"], a["subject"], a["pseudonym"]) for a in alerts] == [("bulk_export", None, pseudo("alice"))]
    assert b"alice" not in out.read_bytes()  # pseudonymised unless --reveal --reason
    assert "5 events: 3 processed (0 duplicates dropped), 1 dead-lettered, 1 expired; 1 alerts" in result.output
    assert "invalid_json: 1" in result.output
    assert f"Evaluating as of {iso(T0 + 3600)[:19]}" in result.output


def test_replay_reports_the_duplicates_it_dropped(run, tmp_path):
    """Two different events sharing a source id are both processed; a re-sent copy of one is dropped
    and reported."""
    a = export("alice", T0, 120, event_id="1", file={"name": "one.xlsx"})
    b = export("alice", T0 + 60, 120, event_id="1", file={"name": "two.xlsx"})
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(d) for d in (a, b, a)) + b"\n")
    out = tmp_path / "alerts.jsonl"
    result = run("replay", str(path), "--alerts-out", str(out), "--as-of", iso(T0 + 3600))
    assert "3 events: 3 processed (1 duplicates dropped), 0 dead-lettered, 0 expired; 1 alerts" in result.output
    assert [orjson.loads(line)["facts"]["records"] for line in out.read_bytes().splitlines()] == [240]


def test_replay_as_of_moves_the_window(run, events_file, tmp_path, pseudo):
    out = tmp_path / "alerts.jsonl"
    # three years later every event is past the window: all expired, no alert
    result = run("replay", str(events_file), "--alerts-out", str(out), "--as-of", iso(T0 + 3 * 365 * 86400))
    assert "0 processed (0 duplicates dropped), 1 dead-lettered, 4 expired; 0 alerts" in result.output
    assert out.read_bytes() == b""
    # as of a time before bob's ancient export became old, it counts (and alerts)
    run("replay", str(events_file), "--alerts-out", str(out), "--as-of", iso(T0 - 799 * 86400))
    subjects = {orjson.loads(line)["pseudonym"] for line in out.read_bytes().splitlines()}
    assert pseudo("bob") in subjects


def test_replay_as_of_needs_a_timezone(run, events_file):
    result = run("replay", str(events_file), "--as-of", "2026-01-01T00:00:00", code=2)
    assert "timezone" in result.output


def test_detectors_lists_every_detector_with_its_settings(run):
    from detectors.registry import CATALOG

    out = run("detectors").output
    for cls in CATALOG:
        assert f"{cls.id} (v{cls.version}, enabled)" in out
    assert "window_s = 3600" in out


def test_config_masks_secrets(run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["config"], env={
        "CUSTODES_DATABASE_URL": "postgresql+psycopg://custodes:s3cret-pw@db/custodes",
        "CUSTODES_PSEUDONYM_KEY": "very-secret-key", "CUSTODES_CONFIG": ""})
    assert result.exit_code == 0
    assert "s3cret-pw" not in result.output and "very-secret-key" not in result.output
    assert "postgresql+psycopg://custodes:***@db/custodes" in result.output


def test_alerts_lists_stored_alerts(run, tmp_path, pseudo):
    from detectors.alert import Alert

    store = AlertStore(f"sqlite:///{tmp_path}/data/custodes.db")
    store.upsert_alerts([Alert(id="a1", detector="bulk_export", detector_version=1, severity="high", score=70.0,
                               subject="alice", title="Bulk export: 270 records", explanation="x", ts=T0,
                               first_seen=T0, last_seen=T0,
                               evidence=({"id": "e1", "ts": T0, "kind": "export", "file_name": "alice.csv"},))])
    store.dispose()
    listing = run("alerts").output
    assert "bulk_export" in listing and "Bulk export" in listing
    assert pseudo("alice") in listing and "alice" not in listing  # pseudonyms unless --reveal --reason
    listing = run("alerts", "--json").output
    rows = [orjson.loads(line) for line in listing.splitlines()]
    assert (rows[0]["subject"], rows[0]["pseudonym"]) == (None, pseudo("alice"))
    assert rows[0]["evidence"][0]["file_name"] == {"masked": True, "size": "9 characters"}
    assert "alice" not in listing
    assert "--reason" in run("alerts", "--reveal", code=2).output
    assert "--reveal" in run("alerts", "--reason", "because", code=2).output


def test_hold_and_retention_commands(run, tmp_path):
    import dataclasses
    import time

    from tests.stream.store.test_store import make_alert

    store = AlertStore(f"sqlite:///{tmp_path}/data/custodes.db")
    old = time.time() - 3 * 365 * 86400
    a = dataclasses.replace(make_alert(), ts=old, first_seen=old, last_seen=old)
    store.upsert_alerts([a])
    store.dispose()
    assert "hold 1 placed" in run("hold", "place", "alert", a.id, "--reason", "IOPC 2026/1", "--by", "dpo").output
    assert "no alert" in run("hold", "place", "alert", "nope", "--reason", "x", "--by", "dpo", code=1).output
    assert "ACTIVE" in run("hold", "list", "--active").output
    receipts = run("retention", "run").output
    assert "kept on hold    1" in receipts  # the alert is years old, but held
    assert "released" in run("hold", "release", "1", "--reason", "closed", "--by", "dpo").output
    assert "deleted       1" in run("retention", "run").output
    listing = run("retention", "receipts").output.splitlines()
    assert len([line for line in listing if "  alerts  " in line]) == 2  # one per run


def test_an_unreadable_input_file_is_a_clear_error_not_a_traceback(run, tmp_path):
    site_log = tmp_path / "site.csv"
    site_log.write_text("officer,when\npc1,2026-01-01\n")
    result = run("replay", str(site_log), code=1)
    assert "give a mapping file" in result.output and "Traceback" not in result.output
    bad_mapping = tmp_path / "m.toml"
    bad_mapping.write_text('format = "csv"\nnonsense = 1\n')
    result = run("replay", str(site_log), "--mapping", str(bad_mapping), code=1)
    assert "nonsense" in result.output


def test_replay_writes_iso_times_and_nothing_stray_on_stderr(run, events_file, tmp_path):
    out = tmp_path / "alerts.jsonl"
    result = run("replay", str(events_file), "--alerts-out", str(out), "--as-of", iso(T0 + 3600))
    alert = orjson.loads(out.read_bytes().splitlines()[0])
    for key in ("ts", "first_seen", "last_seen"):
        assert isinstance(alert[key], str) and alert[key].endswith("+00:00")  # ISO 8601, like alerts --json
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Evaluating as of") and lines[1].startswith("5 events:")
    assert "replay" not in lines  # no bare progress label when stderr is not a terminal


def test_alerts_orders_by_stored_time_and_prints_iso_json(run, tmp_path):
    import dataclasses
    from datetime import UTC, datetime

    from tests.stream.store.test_store import make_alert

    store = AlertStore(f"sqlite:///{tmp_path}/data/custodes.db")
    old_event_stored_now = dataclasses.replace(make_alert(1), id="late", ts=T0 - 30 * 86400)
    store.upsert_alerts([make_alert(2)], now=datetime(2026, 1, 1, tzinfo=UTC))
    store.upsert_alerts([old_event_stored_now], now=datetime(2026, 1, 2, tzinfo=UTC))
    store.dispose()
    table = run("alerts", "--limit", "1").output.splitlines()
    assert table[0].split()[:2] == ["time", "severity"] and "late"[:4] in table[1]
    assert "alice" not in "\n".join(table)  # pseudonyms, not raw identities
    assert "late" not in run("alerts", "--limit", "1", "--order", "event").output
    row = orjson.loads(run("alerts", "--json", "--limit", "1").output.splitlines()[0])
    assert row["created_at"] == "2026-01-02T00:00:00+00:00"
