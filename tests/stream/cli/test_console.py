"""One-line errors for broker, database and file failures; the alerts table."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

import click
import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.cli.console import alerts_table, check_broker, explain, iso, plural


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.fixture
def cli(tmp_path):
    runner = CliRunner()
    env = {"CUSTODES_DATA_DIR": str(tmp_path / "data"), "CUSTODES_BROKER": "", "CUSTODES_DATABASE_URL": "",
           "CUSTODES_CONFIG": ""}

    def invoke(*args: str, **more_env: str):
        return runner.invoke(main, list(args), env={**env, **more_env})

    return invoke


def test_an_unreachable_broker_fails_within_seconds_in_one_line(cli, tmp_path):
    events = tmp_path / "e.jsonl"
    events.write_text('{"@timestamp": "2026-01-01T00:00:00Z", "user": {"id": "u1"}}\n')
    port = _closed_port()
    started = time.monotonic()
    result = cli("ingest", str(events), CUSTODES_BROKER=f"127.0.0.1:{port}")
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    assert f"cannot reach the Kafka broker at 127.0.0.1:{port} (connection refused)" in result.output
    assert "CUSTODES_BROKER" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [("topics", "check"), ("reference", "push")])
def test_every_broker_command_checks_the_broker_first(cli, command, tmp_path):
    port = _closed_port()
    staff = tmp_path / "staff.jsonl"
    staff.write_text('{"user_id": "u1"}\n')
    args = (*command, str(staff)) if command[0] == "reference" else command
    result = cli(*args, CUSTODES_BROKER=f"127.0.0.1:{port}")
    assert result.exit_code == 1, result.output
    assert f"127.0.0.1:{port}" in result.output and "Traceback" not in result.output


def test_a_broker_address_that_is_not_host_port_is_named():
    with pytest.raises(click.ClickException, match="not host:port"):
        check_broker("localhost")


def test_an_unreachable_database_is_one_line_with_the_password_hidden(cli):
    port = _closed_port()
    result = cli("alerts", CUSTODES_DATABASE_URL=f"postgresql+psycopg://custodes:s3cret@127.0.0.1:{port}/custodes")
    assert result.exit_code == 1, result.output
    assert "cannot use the database at postgresql+psycopg://custodes:***@127.0.0.1" in result.output
    assert "s3cret" not in result.output and "Traceback" not in result.output
    assert "CUSTODES_DATABASE_URL" in result.output


def test_debug_shows_the_traceback_as_well(tmp_path):
    port = _closed_port()
    runner = CliRunner()
    env = {"CUSTODES_DATA_DIR": str(tmp_path), "CUSTODES_CONFIG": "",
           "CUSTODES_DATABASE_URL": f"postgresql+psycopg://c:pw@127.0.0.1:{port}/c"}
    result = runner.invoke(main, ["--debug", "alerts"], env=env)
    assert result.exit_code == 1
    assert "Traceback" in result.output and "cannot use the database" in result.output


def test_a_file_error_inside_a_command_is_named_not_a_traceback(cli, tmp_path, monkeypatch):
    import stream.offline.replay

    events = tmp_path / "e.jsonl"
    events.write_text("{}\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(events))

    monkeypatch.setattr(stream.offline.replay, "replay", refuse)
    result = cli("replay", str(events))
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: cannot read {events}: permission denied"


def test_explain_describes_file_errors_and_leaves_bugs_alone():
    assert explain(PermissionError(13, "Permission denied", "/x/y")) == "cannot read /x/y: permission denied"
    assert explain(IsADirectoryError(21, "Is a directory", "/x")) == "/x is a directory, not a file"
    assert explain(KeyError("bug")) is None  # a bug keeps its traceback


def test_plural_and_iso():
    assert plural(1, "message") == "1 message"
    assert plural(2, "message") == "2 messages"
    assert plural(1000, "entry", "entries") == "1,000 entries"
    assert iso(0.0) == "1970-01-01T00:00:00+00:00"
    assert iso(datetime(2026, 1, 1, 12, 0)) == "2026-01-01T12:00:00+00:00"  # naive = UTC (SQLite)


def _row(**over):
    row = {"created_at": datetime(2026, 12, 3, 9, 0, tzinfo=UTC), "ts": 1_780_000_000.0, "severity": "high",
           "score": 71.25, "status": "new", "detector": "unsanctioned_messaging_long_name", "subject": "u1",
           "id": "a" * 40, "title": "Personal data in an unsanctioned app " + "x" * 200}
    return {**row, **over}


def test_the_alerts_table_has_a_header_aligned_columns_and_ellipses():
    long_id = "unsanctioned_messaging_with_a_long_name"
    text = alerts_table([_row(detector=long_id), _row(detector="bulk_export", title="short")],
                        lambda r: "P-abcdefghijklmnop", width=160)
    lines = text.splitlines()
    assert lines[0].split() == ["time", "severity", "score", "status", "detector", "person", "alert", "id", "title"]
    assert len(lines) == 3  # header + one line per alert: nothing wraps
    assert all(len(line) <= 160 for line in lines)
    assert "…" in lines[1] and long_id[:20] in lines[1]  # long cells are cut with an ellipsis
    assert lines[1].index("P-abcdefghijklmnop") == lines[2].index("P-abcdefghijklmnop")  # columns line up
    assert lines[1].startswith("2026-12-03 09:00  high")  # stored time by default
    assert "u1" not in text


def test_the_alerts_table_keeps_its_columns_on_a_narrow_terminal():
    lines = alerts_table([_row()], lambda r: "P-abcdefghijklmnop", width=60, order="event").splitlines()
    assert lines[0].split()[:2] == ["time", "severity"] and "title" in lines[0]
    assert lines[1].startswith("2026-05-28 20:26  high")  # the time of the events with order="event"
