"""Properties every detector must have, on random event streams:

* it never raises on valid Events;
* its state is JSON (survives orjson unchanged) and bounded in size;
* cutting the same stream into batches differently gives the same alerts (ids and final counts).
"""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from detectors.event import ACTIVITY_KINDS, SENSITIVITIES, Event
from detectors.registry import CATALOG

from .helpers import T0, cut, example_reference, run, run_all

REF = example_reference()
USERS = ["pc-1001", "pc-1051", "rv-4002", "st-3001"]
TEXTS = ["hello", "DOB 01/02/1980 NG7 2RD", "AB12 CDE 07700 900123", "x@y.example", ""]
PLACES = [(52.95, -1.16), (51.5, -0.13), (40.7, -74.0), (None, None)]


@st.composite
def events(draw, user=None):
    place = draw(st.sampled_from(PLACES))
    record_ids = draw(st.lists(st.sampled_from(["P-1", "P-2", "P-VIP-0001", "P-COL-0002"]), max_size=3))
    area = draw(st.sampled_from([None, "NG7", "NG", "XX", 7]))
    return Event(
        id=f"e{draw(st.integers(0, 10**9))}",
        ts=T0 + draw(st.floats(0, 5 * 86400, allow_nan=False)),
        user_id=user or draw(st.sampled_from(USERS)),
        kind=draw(st.sampled_from(sorted(ACTIVITY_KINDS))),
        action=draw(st.sampled_from([None, "join", "leave", "member", "reveal_identity", "view"])),
        outcome=draw(st.sampled_from([None, "success", "failure"])),
        record_ids=tuple(record_ids),
        record_count=draw(st.one_of(st.none(), st.integers(0, 100_000))),
        dataset=draw(st.sampled_from([None, "firearm-certificates", "pnc-persons"])),
        sensitivity=draw(st.sampled_from([None, *SENSITIVITIES])),
        case_ref=draw(st.sampled_from([None, "CASE-0001", "CASE-0002", "CASE-404"])),
        recipient_party=draw(st.sampled_from([None, "HO", "Someone"])),
        destination_domain=draw(st.sampled_from([None, "homeoffice.gov.uk", "evil.example", "a.police.uk"])),
        email_to=tuple(draw(st.lists(st.sampled_from(["a@cps.gov.uk", "b@x.example", "nodomain"]), max_size=2))),
        url_domain=draw(st.sampled_from([None, "upload.example"])),
        file_name=draw(st.sampled_from([None, "a.csv"])),
        app_id=draw(st.sampled_from([None, "com.whatsapp", "uk.police.pronto"])),
        policy_set=draw(st.sampled_from([None, "managed-phone", "byod", "unknown"])),
        group_id=draw(st.sampled_from([None, "g-1", "g-2"])),
        min_group_size=draw(st.one_of(st.none(), st.integers(0, 200))),
        lat=place[0], lon=place[1],
        content=draw(st.sampled_from(TEXTS)),
        media=tuple(draw(st.lists(st.sampled_from([{"type": "image/png"}, {"type": "video"}, {}]), max_size=2))),
        object_id=draw(st.sampled_from([None, "drive:1", "drive:2", "sp:3"])),
        share_visibility=draw(st.sampled_from([None, "anyone", "external", "domain", "internal"])),
        attachment_count=draw(st.sampled_from([None, 0, 2])),
        doc={"custodes": {"record": {"postcode_area": area}, "subject": {"id": draw(st.sampled_from(USERS)),
                                                                         "team": "CID"}}},
    )


DETECTORS = [cls.configure({}, REF) for cls in CATALOG]
STATE_MAX_BYTES = 64_000


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=st.lists(events(user="pc-1051"), max_size=40), cuts=st.lists(st.integers(1, 40), max_size=6))
def test_state_is_json_bounded_and_batching_does_not_change_alerts(stream, cuts):
    # Known edge, documented in docs/detectors.md: when a user's state has expired it is deleted with its
    # event-time watermark, so an event later than a detector's memory is then treated as new, while
    # with the state still held it would be ignored. Batching is invariant for lateness within grace.
    newest, lateness = None, 0.0
    for ev in stream:
        if newest is not None:
            lateness = max(lateness, newest - ev.ts)
        newest = ev.ts if newest is None else max(newest, ev.ts)
    assume(lateness <= 3600)
    batches = cut(stream, cuts)
    for det in DETECTORS:
        state, whole = run(det, [stream], subject="pc-1051") if stream else (None, {})
        if state is not None:
            encoded = orjson.dumps(state)
            assert orjson.loads(encoded) == state, det.id
            assert len(encoded) < STATE_MAX_BYTES, det.id
        _, split = run(det, batches, subject="pc-1051")
        assert {a.id: a.count for a in whole.values()} == {a.id: a.count for a in split.values()}, det.id
        signals_whole = run_all(det, [stream], subject="pc-1051")[2] if stream else []
        signals_split = run_all(det, batches, subject="pc-1051")[2]
        assert [(s.id, s.weight) for s in signals_whole] == [(s.id, s.weight) for s in signals_split], det.id


@pytest.mark.parametrize("seed", range(4))
def test_state_stays_bounded_on_long_streams(seed):
    """2,000 random events of one user over a week (plain random: Hypothesis is slow at this size)."""
    rng = random.Random(seed)
    kinds = sorted(ACTIVITY_KINDS)
    stream = [
        Event(id=f"l{i}", ts=T0 + rng.uniform(0, 7 * 86400), user_id="rv-4002", kind=rng.choice(kinds),
              action=rng.choice([None, "join", "member", "reveal_identity", "view"]),
              record_ids=tuple(f"P-{rng.randrange(10**6)}" for _ in range(rng.randrange(4))),
              record_count=rng.choice([None, rng.randrange(500)]), sensitivity=rng.choice(SENSITIVITIES),
              case_ref=rng.choice([None, "CASE-0001", "CASE-404"]), url_domain=rng.choice([None, f"d{i}.example"]),
              dataset="pnc-persons", app_id="com.whatsapp", policy_set="managed-phone",
              group_id=f"g-{rng.randrange(200)}", min_group_size=rng.randrange(100),
              lat=rng.uniform(-60, 60), lon=rng.uniform(-179, 179), content=rng.choice(TEXTS))
        for i in range(2000)
    ]
    stream.sort(key=lambda e: e.ts + rng.uniform(-1800, 1800))  # roughly in order, some late
    for det in DETECTORS:
        state, _ = run(det, [stream[i:i + 100] for i in range(0, len(stream), 100)], subject="rv-4002")
        assert state is None or len(orjson.dumps(state)) < STATE_MAX_BYTES, det.id


def test_message_content_never_reaches_titles_or_explanations():
    secret = "Jane Roe DOB 01/02/1980 NG7 2RD AB12 CDE 07700 900123 QQ123456C j.roe@x.example"
    stream = [Event(id=f"s{i}", ts=T0 + i, user_id="pc-1051", kind=k, content=secret, app_id="com.whatsapp",
                    policy_set="managed-phone", group_id="g", media=({"type": "image/png"},),
                    record_count=5000, dataset="pnc-persons", url_domain="x.example", min_group_size=2,
                    sensitivity="special")
              for i, k in enumerate(["message", "share", "export", "web_upload", "logon"])]
    alerts = [a for det in DETECTORS for a in run(det, [stream], subject="pc-1051")[1].values()]
    assert {a.detector for a in alerts} >= {"unsanctioned_messaging", "leaver_activity", "bulk_export",
                                             "third_party_transfer", "small_cell_export"}
    for a in alerts:
        for word in ("Jane", "Roe", "1980", "2RD", "AB12", "900123", "QQ123456C", "j.roe"):
            assert word not in a.title and word not in a.explanation, (a.detector, word)
