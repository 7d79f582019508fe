"""The documented scenarios from real-format records, through the code path of ``custodes replay``
(readers, activity table, identity resolution, detectors) with the default settings: only the site's
own facts are given (its staff directory with aliases, its sharing register, its mail domain).

Records: tests/data/scenarios/ (README.md there says how each was made from the public samples in
tests/data/sources/). Each scenario raises its alert; each benign look-alike raises none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.contract.settings import load
from stream.offline.replay import replay

SCENARIOS = Path(__file__).resolve().parents[2] / "data" / "scenarios"
AS_OF = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
SITE = {"CUSTODES_REFERENCE_DIR": str(SCENARIOS / "reference"), "CUSTODES_ORG_DOMAINS": "force.example"}


@pytest.fixture
def settings(tmp_path):
    return load(env={"CUSTODES_DATA_DIR": str(tmp_path), **SITE})


def alerts_of(settings, *names: str):
    result = replay(settings, [SCENARIOS / n for n in names], as_of=AS_OF)
    assert not result.dead_lettered, result.dead_lettered
    assert result.processed == result.consumed
    return result, sorted((a.detector, a.subject, a.facts.get("key"), a.count) for a in result.alerts.values())


@pytest.mark.parametrize(("files", "expected"), [
    # 12 Google Drive downloads (some actors given by profile id only) and 10 OneDrive downloads (+3
    # repeats) in 4 minutes by one person under three ids: one person, 22 distinct documents; the OneDrive
    # downloads arrive after newer Drive ones, so each is judged by the busiest window containing it: the
    # 8th to the 10th (20, 21, 22 documents) and the three repeats fold into one alert
    (("many-documents-drive.jsonl", "many-documents-onedrive.jsonl"),
     [("bulk_export", "pc-1001", "documents:medium", 6)]),
    (("external-share-onedrive.jsonl",), [("third_party_transfer", "st-3001", "external|gmail.com", 1)]),
    (("anonymous-link-onedrive.jsonl",), [("third_party_transfer", "st-3001", "public", 1)]),
    (("anyone-with-link-drive.jsonl",), [("third_party_transfer", "st-3001", "public", 1)]),
    (("forwarding-rule-exchange.jsonl",), [("third_party_transfer", "ds-2001", "forward|outlook.com", 1)]),
    # signed in the day before leaving (nothing) and ten days after (the alert)
    (("after-leaving-signin.jsonl",), [("leaver_activity", "pc-1050", "activity", 1)]),
    # Okta sign-ins: London, then San Francisco 40 minutes later
    (("impossible-travel-okta.jsonl",), [("impossible_travel", "ds-2001", "travel", 1)]),
])
def test_scenario_raises_its_alert(settings, files, expected):
    result, got = alerts_of(settings, *files)
    assert got == expected
    assert not result.summary.unknown_identities  # every id resolved to a person


@pytest.mark.parametrize("files", [
    ("benign-documents-drive.jsonl",),     # 40 documents viewed, 5 downloaded six times each
    ("benign-sharing-onedrive.jsonl",),    # shared with a colleague, with the CPS, an organisation-wide link
    ("benign-forwarding-exchange.jsonl",), # forwarding to a colleague; forwarding cleared ($null)
    ("benign-travel-okta.jsonl",),         # London, then Manchester three hours later
    ("many-documents-drive.jsonl",),       # each source alone is below the threshold
    ("many-documents-onedrive.jsonl",),
])
def test_benign_look_alike_raises_nothing(settings, files):
    assert alerts_of(settings, *files)[1] == []


def test_the_documents_alert_says_what_was_counted(settings):
    result, _ = alerts_of(settings, "many-documents-drive.jsonl", "many-documents-onedrive.jsonl")
    (alert,) = result.alerts.values()
    assert alert.facts["documents"] == 22 and alert.facts["min_documents"] == 20
    assert alert.title == "Bulk download: 22 medium-sensitivity documents in 5 min"
    assert "a.morgan" not in alert.title + alert.explanation


def test_without_aliases_the_sources_do_not_meet(tmp_path):
    """The same records with a directory that lists no aliases: two ids, neither over the threshold,
    and every event counted as an unknown identity."""
    reference = tmp_path / "reference"
    reference.mkdir()
    lines = [orjson.loads(line) for line in (SCENARIOS / "reference" / "staff.jsonl").read_text().splitlines()
             if line.startswith("{")]
    (reference / "staff.jsonl").write_bytes(b"\n".join(
        orjson.dumps({k: v for k, v in rec.items() if k != "aliases"}) for rec in lines))
    settings = load(env={"CUSTODES_DATA_DIR": str(tmp_path), **SITE, "CUSTODES_REFERENCE_DIR": str(reference)})
    result, got = alerts_of(settings, "many-documents-drive.jsonl", "many-documents-onedrive.jsonl")
    assert got == []
    assert result.summary.unknown_identities == {"google_workspace.drive": 12, "o365.audit": 13}


def test_replay_command_shows_unknown_identities(tmp_path):
    runner = CliRunner()
    env = {"CUSTODES_DATA_DIR": str(tmp_path / "data"), "CUSTODES_BROKER": "", "CUSTODES_DATABASE_URL": "",
           "CUSTODES_CONFIG": "", **SITE}
    out = tmp_path / "alerts.jsonl"
    result = runner.invoke(main, ["replay", str(SCENARIOS / "unknown-person-drive.jsonl"),
                                  str(SCENARIOS / "forwarding-rule-exchange.jsonl"), "--alerts-out", str(out),
                                  "--as-of", "2026-12-01T00:00:00Z"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "user ids not in the staff directory (processed as given; add them as aliases), by source: " \
           "google_workspace.drive 1" in result.output
    alerts = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    from stream.contract.settings import load
    from stream.privacy.pseudonym import Pseudonymiser, load_key

    pseudo = Pseudonymiser(load_key(load(None, env={"CUSTODES_CONFIG": ""}, data_dir=tmp_path / "data")))
    # pseudonymised (replay's default): the person the alias resolved to, never the raw id
    assert [(a["detector"], a["pseudonym"]) for a in alerts] == [("third_party_transfer", pseudo("ds-2001"))]
    assert "contractor@gmail.com" not in result.output  # counted and shown, never named
