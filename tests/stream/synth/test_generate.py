"""The synthetic organisation generator (stream/synth): determinism, validity, ground truth, memory."""

from __future__ import annotations

import tracemalloc
from datetime import date
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.cli.synth import COMMANDS
from stream.cli.synth import generate as generate_command
from stream.contract.schema import parse, parse_timestamp
from stream.detection.reference import load_dir
from stream.sources import device
from stream.synth.generate import generate
from stream.synth.organisation import build
from stream.synth.render import iso
from stream.synth.scenarios import SCENARIOS

FILES = ("events.jsonl", "device_notifications.jsonl", "truth.jsonl", "manifest.json",
         "reference/staff.jsonl", "reference/cases.jsonl", "reference/restricted.jsonl",
         "reference/sharing.jsonl", "reference/apps.jsonl")


@pytest.fixture(scope="module")
def every_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough for after_hours (past unusual_volume's warm-up), insiders enough for all eleven."""
    out = tmp_path_factory.mktemp("org")
    generate(out, staff=100, days=21, seed=5, insider_rate=0.12)
    return out


def test_same_seed_gives_byte_identical_output(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, staff=40, days=5, seed=11, insider_rate=0.1)
    generate(b, staff=40, days=5, seed=11, insider_rate=0.1)
    generate(c, staff=40, days=5, seed=12, insider_rate=0.1)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "events.jsonl").read_bytes() != (c / "events.jsonl").read_bytes()


def test_every_event_is_valid_and_sorted(every_scenario: Path) -> None:
    previous = 0.0
    ids = set()
    with (every_scenario / "events.jsonl").open("rb") as f:
        for line in f:
            event = parse(line.rstrip(b"\n"))
            assert event.ts >= previous
            previous = event.ts
            assert event.doc["custodes"]["schema_version"] == 1
            ids.add(event.id)
    previous = 0.0
    with (every_scenario / "device_notifications.jsonl").open("rb") as f:
        for line in f:
            doc = device.normalise(orjson.loads(line))  # validates as well
            ts = parse_timestamp(doc["@timestamp"])
            assert ts >= previous
            previous = ts
            ids.add(doc["event"]["id"])
    manifest = orjson.loads((every_scenario / "manifest.json").read_bytes())
    assert len(ids) == manifest["events"] + manifest["device_notifications"]  # ids are unique
    assert previous < parse_timestamp(manifest["end"])


def test_every_scenario_is_in_the_truth_and_its_events_exist(every_scenario: Path) -> None:
    truth = [orjson.loads(line) for line in (every_scenario / "truth.jsonl").read_bytes().splitlines()]
    assert {t["scenario"] for t in truth} == set(SCENARIOS)
    wanted = {i for t in truth for i in t["event_ids"]}
    seen: dict[str, str] = {}
    with (every_scenario / "events.jsonl").open("rb") as f:
        for line in f:
            doc = orjson.loads(line)
            if doc["event"]["id"] in wanted:
                seen[doc["event"]["id"]] = doc["user"]["id"]
    with (every_scenario / "device_notifications.jsonl").open("rb") as f:
        for line in f:
            doc = orjson.loads(line)
            if doc["Notification ID"] in wanted:
                seen[doc["Notification ID"]] = doc["Uid"]
    assert set(seen) == wanted
    staff = {s.user_id: s for s in load_dir(every_scenario / "reference").staff.values()}
    for t in truth:
        assert t["event_ids"] and t["detectors"] == list(SCENARIOS[t["scenario"]])
        assert {seen[i] for i in t["event_ids"]} == {t["user_id"], *t["accounts"]}  # a masquerader's colleague
        if t["scenario"] == "masquerader":
            assert len(t["accounts"]) == 1 and staff[t["accounts"][0]].primary_hosts
        if t["scenario"] == "departing_thief":
            assert staff[t["user_id"]].notice_at is not None
        assert parse_timestamp(t["start"]) <= parse_timestamp(t["end"])
        if t["scenario"] == "leaver_still_active":
            assert staff[t["user_id"]].left_at is not None
            assert parse_timestamp(t["start"]) >= staff[t["user_id"]].left_at


def test_reference_data_loads_and_describes_the_staff(every_scenario: Path) -> None:
    ref = load_dir(every_scenario / "reference")
    assert len(ref.staff) == 100
    assert all(p.team and p.role and p.home_postcode_area and p.start_date for p in ref.staff.values())
    assigned = {u for users in ref.cases.values() for u in users}
    assert assigned == set(ref.staff)  # everyone has cases to work on
    assert ref.sanctioned("managed-phone", "uk.police.pronto") is True
    assert ref.sanctioned("managed-phone", "com.whatsapp") is False
    assert ref.parties_for_domain("cps.gov.uk")
    assert any("colleague" in flags for flags in ref.restricted.values())


def test_organisation_has_shift_patterns_joiners_and_leavers() -> None:
    org = build(seed=3, staff=500, days=30, start=date(2026, 3, 2))
    assert {p.pattern for p in org.staff} == {"response", "detective", "office"}
    assert any(p.start_day is not None for p in org.staff)
    assert any(p.leave_day is not None for p in org.staff)
    assert len({p.user_id for p in org.staff}) == 500


def test_memory_stays_constant_as_the_event_count_grows(tmp_path: Path) -> None:
    peaks = {}
    counts = {}
    for days in (3, 12):
        tracemalloc.start()
        try:
            result = generate(tmp_path / str(days), staff=150, days=days, seed=2, insider_rate=0.02)
            peaks[days] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        counts[days] = result.events + result.device_notifications
    assert counts[12] > 40_000 and counts[12] > 3 * counts[3]
    assert peaks[12] < 8_000_000, peaks  # a few MB, of which 2 MB are the two write buffers
    assert peaks[12] - peaks[3] < 1_000_000, peaks  # not growing with the number of events


def test_generate_command(tmp_path: Path) -> None:
    assert [c.name for c in COMMANDS] == ["generate", "evaluate"]
    out = tmp_path / "org"
    result = CliRunner().invoke(generate_command, ["--staff", "20", "--days", "2", "--seed", "3", "--out", str(out),
                                                   "--start", "2026-01-05", "--insider-rate", "0.1"])
    assert result.exit_code == 0, result.output
    assert "events/s" in result.output
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["start"] == "2026-01-05T00:00:00Z" and manifest["end"] == "2026-01-07T00:00:00Z"
    assert manifest["insiders"] == 2


def test_demo_scenarios_raise_their_expected_alerts(tmp_path: Path) -> None:
    import random
    import time

    from stream.contract.settings import load
    from stream.offline.evaluate import run_detectors
    from stream.synth.demo import DEMO_SCENARIOS, demo_organisation, ordinary, scenario_burst

    org, leavers = demo_organisation(seed=7, staff=60)
    org.write_reference(tmp_path / "reference")
    now = time.time() - 600
    docs = []
    events = ordinary(org, leavers)
    for _ in range(300):
        doc = next(events)
        doc["@timestamp"] = iso(now)
        docs.append(doc)
    expected = {}
    rng = random.Random(1)
    for n, name in enumerate(DEMO_SCENARIOS):
        burst = scenario_burst(org, leavers, name, n, now + 20 * n, rng)
        expected[name] = (burst[0]["user"]["id"], set(SCENARIOS[name]))
        docs.extend(burst)
    docs.sort(key=lambda d: d["@timestamp"])
    with (tmp_path / "events.jsonl").open("wb") as f:
        for doc in docs:
            parse(orjson.dumps(doc))
            f.write(orjson.dumps(doc) + b"\n")
    result = run_detectors(load(), tmp_path, as_of=now + 3600)
    fired = {(a.subject, a.detector) for a in result.alerts.values()}
    for name, (user, detectors) in expected.items():
        assert {(user, d) for d in detectors} <= fired, name


def test_run_demo_streams_batches_per_home_partition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import kafka

    import stream.contract.topics
    import stream.detection.reference
    from stream.contract.partitioning import home_partition
    from stream.contract.settings import load

    sent: list[tuple[int, bytes]] = []
    pushed: list[Path] = []

    class FakeProducer:
        def __init__(self, **_: object) -> None:
            pass

        def partitions_for(self, topic: str) -> set[int]:
            return {0, 1, 2, 3}

        def send(self, topic: str, value: bytes, partition: int, timestamp_ms: int | None = None) -> None:
            sent.append((partition, value))

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(kafka, "KafkaProducer", FakeProducer)
    monkeypatch.setattr(stream.detection.reference, "push", lambda settings, paths: pushed.extend(paths) or {})
    monkeypatch.setattr(stream.contract.topics, "ensure_topics", lambda settings, bootstrap: [])
    from stream.synth.demo import run_demo

    settings = load().model_copy(update={"broker": "127.0.0.1:1", "data_dir": tmp_path})
    stop = threading.Event()
    thread = threading.Thread(target=run_demo, args=(settings, stop),
                              kwargs={"rate_eps": 40.0, "scenario_every_s": 0.4, "settle_s": 0.0,
                                      "wait_for_worker_s": 0.0}, daemon=True)
    thread.start()
    threading.Timer(2.0, stop.set).start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert sorted(p.name for p in pushed) == ["apps.jsonl", "cases.jsonl", "restricted.jsonl", "sharing.jsonl",
                                              "staff.jsonl"]
    assert all(p.parent == tmp_path / "demo" / "reference" for p in pushed)
    events = []
    for partition, value in sent:
        for line in value.split(b"\n"):
            event = parse(line)
            assert home_partition(event.user_id, 4) == partition
            events.append(event)
    assert len(events) > 40
    assert any(e.id.startswith("demo-") for e in events)  # at least one scenario was played
    assert abs(events[-1].ts - __import__("time").time()) < 60


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), staff=st.integers(1, 25), days=st.integers(1, 4),
       rate=st.sampled_from([0.0, 0.1, 0.5]))
def test_any_small_organisation_is_valid(tmp_path: Path, seed: int, staff: int, days: int, rate: float) -> None:
    out = tmp_path / f"{seed}-{staff}-{days}-{rate}"
    result = generate(out, staff=staff, days=days, seed=seed, insider_rate=rate)
    ids = set()
    for line in (out / "events.jsonl").read_bytes().splitlines():
        ids.add(parse(line).id)
    for line in (out / "device_notifications.jsonl").read_bytes().splitlines():
        ids.add(device.normalise(orjson.loads(line))["event"]["id"])
    assert len(ids) == result.events + result.device_notifications
    for line in (out / "truth.jsonl").read_bytes().splitlines():
        assert set(orjson.loads(line)["event_ids"]) <= ids
    load_dir(out / "reference")
