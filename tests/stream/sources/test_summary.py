"""What Custodes made of a log: replay / mapping check summaries on the public-sample fixtures, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.contract.schema import parse_timestamp
from stream.contract.settings import load
from stream.offline.replay import replay

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ROOT / "tests" / "data" / "sources"
AS_OF = {  # each fixture is evaluated as of shortly after its records
    "m365.jsonl": "2020-03-01T00:00:00Z", "google_workspace.jsonl": "2020-10-03T00:00:00Z",
    "okta.jsonl": "2020-02-15T00:00:00Z", "ecs-windows-security.jsonl": "2015-09-19T00:00:00Z",
    "ecs-linux.jsonl": "2024-02-11T00:00:00Z", "ecs-proxy.jsonl": "2024-02-11T00:00:00Z",
    "ecs-email.jsonl": "2024-02-11T00:00:00Z",
}
EXPECTED = {
    "m365.jsonl": {"share": 3, "record_access": 2, "export": 2, "mail_forward": 2, "logon": 2, "other": 2,
                   "message": 1},
    "google_workspace.jsonl": {"export": 1, "record_access": 1, "share": 4, "logon": 2, "other": 3},
    "okta.jsonl": {"logon": 1, "logoff": 1, "other": 1},
    "ecs-windows-security.jsonl": {"record_access": 1, "logon": 2, "logoff": 1, "removable_media": 1},
    "ecs-linux.jsonl": {"logon": 3, "record_access": 1, "other": 1},
    "ecs-proxy.jsonl": {"web_upload": 1, "other": 1},
    "ecs-email.jsonl": {"message": 1},
}


@pytest.fixture
def settings(tmp_path):
    return load(env={"CUSTODES_DATA_DIR": str(tmp_path),
                     "CUSTODES_ORG_DOMAINS": "testsiem.onmicrosoft.com,example.com"})


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_replays_with_no_dead_letters_and_the_expected_activities(settings, name: str) -> None:
    result = replay(settings, [SOURCES / name], as_of=parse_timestamp(AS_OF[name]))
    assert dict(result.dead_lettered) == {}
    assert result.expired == 0
    assert dict(result.summary.by_activity) == EXPECTED[name]
    assert result.processed == sum(EXPECTED[name].values())
    assert not result.summary.unclassified  # the table covers every record of the samples


def test_replay_counts_unclassified_and_shows_where_dead_letters_are(settings, tmp_path: Path) -> None:
    log = tmp_path / "mixed.jsonl"
    log.write_text(
        '{"@timestamp": "2024-02-10T10:00:00Z", "user": {"id": "a"}, "event": {"dataset": "acme.app", "action": "x"}}\n'
        '{"@timestamp": "2024-02-10T10:00:00Z", "user": {"id": 1.5}}\n'
        'not json\n'
        '{"@timestamp": "2024-02-10T10:00:00Z", "user": {"id": "b"},'
        ' "event": {"dataset": "o365.audit", "action": "y"}}\n')
    result = replay(settings, [log], as_of=parse_timestamp("2024-02-11T00:00:00Z"))
    assert dict(result.summary.by_activity) == {"other": 2}
    assert dict(result.summary.by_source) == {"acme.app": 1, "o365.audit": 1}
    assert dict(result.summary.unclassified) == {"other": 1, "o365.audit": 1}
    assert result.summary.examples == {"wrong_type": [f"{log}:2 at user.id"], "invalid_json": [f"{log}:3"]}
    lines = "\n".join(result.summary.lines(result.dead_lettered))
    assert "by activity: other 2" in lines
    assert f"dead letter wrong_type: 1; first at {log}:2 at user.id" in lines


def cli(*args: str, code: int = 0) -> str:
    env = {"CUSTODES_BROKER": "", "CUSTODES_DATABASE_URL": "", "CUSTODES_CONFIG": ""}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_replay_prints_sources_and_activities(tmp_path: Path) -> None:
    out = cli("--data-dir", str(tmp_path), "replay", str(SOURCES / "okta.jsonl"), "--as-of", "2020-02-15T00:00:00Z",
              "--alerts-out", str(tmp_path / "a.jsonl"))
    assert "by source:   okta.system 3" in out
    assert "by activity: " in out and "logon 1" in out and "logoff 1" in out


def test_mapping_check_shows_each_line(tmp_path: Path) -> None:
    sample = tmp_path / "sample.jsonl"
    lines = (SOURCES / "m365.jsonl").read_text().splitlines()
    sample.write_text("\n".join([lines[4], '{"CreationTime": "2024-01-01T00:00:00", "Operation": "FileDownloaded"}',
                                 lines[8]]) + "\n")
    out = cli("mapping", "check", str(ROOT / "config" / "mappings" / "m365-unified-audit.toml"),
              "--sample", str(sample))
    assert "loads cleanly (jsonl, keys case-insensitive, 6 event kind(s))" in out
    assert "line 1: export  {" in out
    assert "line 2: REFUSED missing_user at user.id:" in out
    assert "line 3: mail_forward  {" in out
    assert "3 records: 2 events, 1 refused; by activity: export 1, mail_forward 1; refused: missing_user 1" in out


def test_mapping_check_of_a_broken_mapping_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('format = "jsonl"\n[timestamp]\ncolumn = "t"\n[[when]]\nif = {}\n')
    out = cli("mapping", "check", str(bad), "--sample", str(SOURCES / "okta.jsonl"), code=1)
    assert "when 1: if" in out


def test_mapping_check_where_every_record_is_refused_exits_1(tmp_path: Path) -> None:
    out = cli("mapping", "check", str(ROOT / "config" / "mappings" / "m365-unified-audit.toml"),
              "--sample", str(SOURCES / "okta.jsonl"), code=1)
    assert "3 records: 0 events, 3 refused" in out
