import base64
import zlib

import orjson
import pytest

from detectors.registry import build
from stream.pipeline import Pipeline
from stream.settings import load

from .events import T0, export, iso, lines

NOW = T0 + 3600


@pytest.fixture
def settings(tmp_path):
    return load(env={"CUSTODES_DATA_DIR": str(tmp_path)})


@pytest.fixture
def pipeline(settings):
    return Pipeline(settings, build(settings.detectors), clock=lambda: NOW)


def test_bad_lines_are_dead_lettered_with_reasons_and_source(pipeline):
    value = lines(
        export("alice", T0, 5),
        b'{"truncated": ',
        b"\xff\xfe\xfd",
        b"[1, 2]",
        {"@timestamp": "2026-03-02T09:00:00", "user": {"id": "bob"}},
        {"@timestamp": "2026-03-02T09:00:00Z"},
        {"@timestamp": "yesterday", "user": {"id": "bob"}},
        {"@timestamp": "2026-03-02T09:00:00Z", "user": {"id": ["bob"]}},
    )
    split = pipeline.split(value, "events", 3, 42)
    assert split.consumed == 8
    assert [d.reason for d in split.dead] == [
        "invalid_json", "not_utf8", "not_an_object", "timestamp_without_timezone", "missing_user",
        "bad_timestamp", "wrong_type",
    ]
    assert [d.line for d in split.dead] == [2, 3, 4, 5, 6, 7, 8]
    assert split.dead[1].raw == b"\xff\xfe\xfd"  # the original bytes, untouched
    headers = dict(split.dead[0].headers())
    assert headers["custodes.source.partition"] == b"3"
    assert headers["custodes.source.offset"] == b"42"
    assert list(split.groups) == ["alice"]


def test_empty_message_is_bad_input_but_blank_lines_in_a_batch_are_not_events(pipeline):
    assert [d.reason for d in pipeline.split(b"", "events", 0, 0).dead] == ["invalid_json"]
    split = pipeline.split(lines(export("a", T0, 1)) + b"\n\n", "events", 0, 1)
    assert split.consumed == 1 and not split.dead


def test_retention_gate_counts_expired_and_dead_letters_far_future(pipeline, settings):
    too_old = NOW - settings.retention_s - 1
    just_inside = NOW - settings.retention_s + 1
    future = NOW + settings.max_future_s + 1
    split = pipeline.split(
        lines(export("a", too_old, 1), export("a", just_inside, 1), export("a", future, 1),
              export("a", NOW + settings.max_future_s - 1, 1)),
        "events", 0, 0,
    )
    assert split.expired == 1
    assert [d.reason for d in split.dead] == ["timestamp_in_future"]
    assert len(split.groups["a"]) == 2
    assert split.consumed == split.expired + len(split.dead) + len(split.groups["a"])


def test_events_off_their_home_partition_are_rerouted(pipeline):
    home = {"alice": 1, "bob": 2}.__getitem__
    split = pipeline.split(lines(export("alice", T0, 1), export("bob", T0, 1)), "events", 1, 0, home)
    assert list(split.groups) == ["alice"]
    assert [(user, number) for user, _, number in split.reroute] == [("bob", 2)]
    assert orjson.loads(split.reroute[0][1])["user"]["id"] == "bob"


def test_redelivered_message_does_not_count_twice(pipeline):
    """The worker writes state only after the message's alerts are acknowledged (stream/app.py), so a
    redelivered message whose state survived has nothing left to send."""
    events = pipeline.split(lines(export("alice", T0, 150, event_id="e1")), "events", 0, 10).groups["alice"]
    first = pipeline.apply("alice", events, None, "e", 0, 10)
    assert first.alerts == []
    events2 = pipeline.split(lines(export("alice", T0 + 60, 100, event_id="e2")), "events", 0, 11).groups
    second = pipeline.apply("alice", events2["alice"], first.state, "e", 0, 11)
    assert [a.count for a in second.alerts] == [1]  # 250 > 200 for high sensitivity
    # the same message again (a crash before the offset commit): state unchanged, nothing counted
    again = pipeline.apply("alice", events2["alice"], second.state, "e", 0, 11)
    assert again.redelivered and again.state == second.state and again.alerts == []
    # an older message redelivered: nothing counted again
    older = pipeline.apply("alice", events, second.state, "e", 0, 10)
    assert older.redelivered and older.state == second.state and older.alerts == []
    # a crash before the state was written replays against the old state: the same alert, same id
    replayed = pipeline.apply("alice", events2["alice"], first.state, "e", 0, 11)
    assert [(a.id, a.count) for a in replayed.alerts] == [(a.id, a.count) for a in second.alerts]
    # the next new message counts normally, folding into the same alert
    events3 = pipeline.split(lines(export("alice", T0 + 120, 10, event_id="e3")), "events", 0, 12).groups
    third = pipeline.apply("alice", events3["alice"], second.state, "e", 0, 12)
    assert [(a.id, a.count) for a in third.alerts] == [(second.alerts[0].id, 2)]


def test_same_offset_on_another_partition_is_not_a_redelivery(pipeline):
    evs = pipeline.split(lines(export("alice", T0, 150)), "events", 0, 5).groups["alice"]
    first = pipeline.apply("alice", evs, None, "e", 0, 5)
    evs2 = pipeline.split(lines(export("alice", T0 + 1, 150)), "events", 1, 5).groups["alice"]
    moved = pipeline.apply("alice", evs2, first.state, "e", 1, 5)
    assert not moved.redelivered
    assert len(moved.alerts) == 1  # 300 records now counted


def test_a_failing_detector_dead_letters_only_the_event_it_fails_on(settings):
    from detectors.base import Detector

    class Fussy(Detector):
        id = "fussy"
        summary = "fails on one user name"

        def process(self, subject, events, state, clock):
            if any(e.user_name == "poison" for e in events):
                raise KeyError("poison")
            return {"n": (state or {}).get("n", 0) + len(events)}, []

    pipe = Pipeline(settings, [Fussy(), *build(settings.detectors)], clock=lambda: NOW)
    value = lines(export("a", T0, 150), {**export("a", T0, 100), "user": {"id": "a", "name": "poison"}})
    split = pipe.split(value, "events", 0, 0)
    applied = pipe.apply("a", split.groups["a"], None, "e", 0, 0)
    assert [f.detector for f in applied.failures] == ["fussy"]
    assert len(applied.alerts) == 1  # bulk_export still saw both events: 250 > 200
    letters = pipe.failure_letters(applied.failures, "events", 0, 0)
    assert letters[0].reason == "detector_failed" and letters[0].detector == "fussy"
    assert "poison" not in letters[0].detail  # the error text may hold personal data: type only
    assert orjson.loads(applied.state)["d"]["fussy"] == {"n": 1}


def test_a_resent_event_is_recognised_and_not_counted_twice(pipeline):
    one = export("alice", T0, 150, event_id="same")
    first = pipeline.apply("alice", pipeline.split(lines(one), "events", 0, 1).groups["alice"], None, "e", 0, 1)
    again = pipeline.apply("alice", pipeline.split(lines(one), "events", 0, 2).groups["alice"],
                           first.state, "e", 0, 2)
    assert again.duplicates == 1 and again.alerts == []  # 150, not 300 > 200
    other = pipeline.apply("alice", pipeline.split(lines(export("alice", T0, 60, event_id="new")),
                                                   "events", 0, 3).groups["alice"], again.state, "e", 0, 3)
    assert other.duplicates == 0 and [a.facts["records"] for a in other.alerts] == [210]


def test_the_remembered_event_ids_are_bounded_and_older_states_are_read(pipeline, settings):
    keep = settings.dedupe_events
    evs = pipeline.split(lines(*(export("a", T0 + i, 1, event_id=f"id{i}") for i in range(keep + 5))),
                         "events", 0, 0).groups["a"]
    state = orjson.loads(pipeline.apply("a", evs, None, "e", 0, 0).state)
    assert len(base64.b64decode(state["x"])) == 4 * keep  # the newest `keep` ids, 4 bytes each
    again = pipeline.split(lines(export("a", T0 + 4, 1, event_id="id4"), export("a", T0 + 5, 1, event_id="id5"),
                                 export("a", T0 + 9, 1, event_id="id9")), "events", 0, 1).groups["a"]
    assert pipeline.apply("a", again, orjson.dumps(state), "e", 0, 1).duplicates == 2  # id4 was forgotten
    # a state written by an earlier version keeps its ids as a list of hex strings
    state["x"] = [f"{zlib.crc32(b'id4'):08x}"]
    assert pipeline.apply("a", again, orjson.dumps(state), "e", 0, 1).duplicates == 1


def test_a_digest_matches_only_on_an_entry_boundary():
    from stream.pipeline import _has_digest

    digests = bytearray(b"\x00\x01\x02\x03\x04\x05\x06\x07")
    assert _has_digest(digests, b"\x04\x05\x06\x07") and _has_digest(digests, b"\x00\x01\x02\x03")
    assert not _has_digest(digests, b"\x02\x03\x04\x05")  # spans two entries
    assert not _has_digest(bytearray(), b"\x00\x01\x02\x03")


def test_state_is_stale_once_its_newest_event_is_past_the_window(pipeline, settings):
    evs = pipeline.split(lines(export("a", T0, 150), export("a", T0 + 60, 10)), "events", 0, 0).groups["a"]
    state = pipeline.apply("a", evs, None, "e", 0, 0).state
    assert state is not None
    newest = T0 + 60
    assert not pipeline.stale(state, newest + settings.retention_s - 1)
    assert pipeline.stale(state, newest + settings.retention_s + 1)


def test_tick_finds_what_time_alone_reveals(settings):
    """A leaver who stays silent but is still in a monitored group: the worker's periodic tick runs the
    detectors with no events at the clock's now."""
    from detectors.reference import ReferenceHolder
    from tests.detectors.helpers import example_reference
    from tests.detectors.test_leaver_activity import LEFT

    now = [LEFT - 86400 * 100]
    pipe = Pipeline(settings, build(settings.detectors, ReferenceHolder(example_reference())),
                    clock=lambda: now[0])
    join = {"@timestamp": iso(now[0]), "event": {"id": "j1", "action": "join"}, "user": {"id": "pc-1051"},
            "custodes": {"activity": "membership", "group": {"id": "g-whatsapp-241"}}}
    split = pipe.split(lines(join), "events", 0, 0)
    applied = pipe.apply("pc-1051", split.groups["pc-1051"], None, "e", 0, 0)
    assert applied.alerts == [] and applied.state is not None
    quiet = pipe.tick("pc-1051", applied.state)
    assert quiet.alerts == [] and quiet.state == applied.state  # before the leave date: nothing
    now[0] = LEFT + 7200
    found = pipe.tick("pc-1051", applied.state)
    assert [a.detector for a in found.alerts] == ["leaver_activity"]
    assert orjson.loads(found.state)["o"] == orjson.loads(applied.state)["o"]  # position unchanged


def test_a_dead_letter_keeps_at_most_its_limit_and_says_how_much_there_was():
    from stream.pipeline import DeadLetter, cut_for_dead_letter

    assert cut_for_dead_letter(b"short", 10) == (b"short", [])
    assert cut_for_dead_letter(b"x" * 11, 10) == (b"x" * 10, [("custodes.truncated", b"11")])
    value, headers = DeadLetter(b"y" * 20, "invalid_json", "not valid JSON", "events", 0, 5, 1).record(8)
    assert value == b"y" * 8
    assert dict(headers)["custodes.reason"] == b"invalid_json" and dict(headers)["custodes.truncated"] == b"20"


def test_kept_state_is_a_copy_of_what_orjson_returned(pipeline, monkeypatch):
    """orjson's output sits in a larger buffer than its length, which it pins for as long as it is
    kept; the state the worker and replay keep is an exact-size copy (bench/state.py measures RSS)."""
    import stream.pipeline as module
    from stream.pipeline import owned

    data = orjson.dumps({"a": "b" * 300})
    assert bytes(data) is data and data[:] is data  # why a plain bytes() is no copy
    copy = owned(data)
    assert copy == data and copy is not data

    returned = []
    dumps = module.orjson.dumps

    def spy(obj, *args):
        returned.append(dumps(obj, *args))
        return returned[-1]

    monkeypatch.setattr(module.orjson, "dumps", spy)
    split = pipeline.split(lines(export("alice", T0, 5, event_id="e1")), "t", 0, 0)
    applied = pipeline.apply("alice", split.groups["alice"], None, "e", 0, 0)
    assert applied.state == returned[-1] and all(applied.state is not r for r in returned)
    ticked = pipeline.tick("alice", applied.state)
    assert ticked.state is applied.state or all(ticked.state is not r for r in returned)
