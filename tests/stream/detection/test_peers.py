"""Peer baselines built from event files feed unusual_volume's comparison with the user's peers."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import orjson
from click.testing import CliRunner

from detectors.reference import load
from stream.cli import main
from stream.contract.settings import REPO_CONFIG
from stream.contract.settings import load as load_settings
from stream.offline.replay import replay
from tests.stream.events import iso

DAY = 86400
START = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday


def office_hours(user: str, days: int) -> list[dict]:
    out = []
    for d in range(days):
        day = START + d * DAY
        if datetime.fromtimestamp(day, UTC).weekday() >= 5:
            continue
        for h in range(9, 17):
            out += [{"@timestamp": iso(day + h * 3600 + i * 360), "event": {"id": f"{user}-{d}-{h}-{i}"},
                     "user": {"id": user}, "custodes": {"activity": "record_access"}} for i in range(10)]
    return out


def test_peer_baselines_reach_unusual_volume(tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\n".join(orjson.dumps(e) for e in sorted(
        office_hours("pc-1001", 21) + office_hours("pc-1002", 21), key=lambda e: e["@timestamp"])) + b"\n")
    reference = tmp_path / "reference"
    reference.mkdir()
    shutil.copy(REPO_CONFIG.parent / "reference" / "staff.jsonl", reference / "staff.jsonl")
    env = {"CUSTODES_CONFIG": "", "CUSTODES_REFERENCE_DIR": str(reference), "CUSTODES_DATA_DIR": str(tmp_path)}

    result = CliRunner().invoke(main, ["reference", "peers", str(history), "--out", str(reference / "peers.jsonl")],
                                env=env)
    assert result.exit_code == 0, result.output
    assert "1 peer group baseline(s)" in result.output
    [record] = [orjson.loads(line) for line in (reference / "peers.jsonl").read_bytes().splitlines()]
    assert record["group"] == "Response North/constable" and record["members"] >= 2
    monday_10 = 10  # bucket: weekday hour 10 (GMT in January)
    members = record["members"]
    # two of the group's members each made 10 look-ups an hour: the per-member mean is 20 / members
    assert abs(record["mean"][monday_10] - 20 / members) < 0.01
    snapshot = load({"staff.jsonl": (reference / "staff.jsonl").read_text(),
                     "peers.jsonl": (reference / "peers.jsonl").read_text()})
    assert "Response North/constable" in snapshot.peers

    # a burst on a Friday morning: unusual for the user and for the peers -> the alert cites the peers
    burst = [{"@timestamp": iso(START + 25 * DAY + 10 * 3600 + i * 10), "event": {"id": f"b{i}"},
              "user": {"id": "pc-1001"}, "custodes": {"activity": "record_access"}} for i in range(80)]
    stream = tmp_path / "stream.jsonl"
    stream.write_bytes(b"\n".join(orjson.dumps(e) for e in office_hours("pc-1001", 21) + burst) + b"\n")
    settings = load_settings(env=env)
    got = [a for a in replay(settings, [stream], as_of=START + 30 * DAY).alerts.values()
           if a.detector == "unusual_volume"]
    assert got and got[0].facts.get("peer_group") == "Response North/constable"
