"""Mutated audit records for fuzz runs (tests/resilience/test_fuzz.py, bench/fuzz.py).

Each record is one line (no b"\\n" inside, never blank): a valid canonical event, or one mutated by
truncation, wrong types, huge strings, deep nesting, invalid UTF-8, NaN/Infinity, far-past or
far-future times, random byte flips, control characters (NUL, C0, DEL, C1) in identifier fields or in
free text, duplicate keys, lines over the size limit, or an exact re-send of an earlier valid record.
Each comes with the outcomes it may have (:data:`ANY` for byte flips, whose effect is random): a
dead-letter reason, ``processed``, ``duplicate`` (processed, recognised as a re-send) or ``expired``.
``outcomes`` runs records through ``Pipeline`` in-process (exactly what the worker runs per message)
and is the oracle the Kafka run is reconciled against; ``per_record`` tells each record's outcome.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import orjson

from tests.stream.events import export, iso

MUTATIONS = ("valid", "truncate", "wrong_type", "huge_string", "deep_nesting", "bad_utf8", "nan",
             "far_past", "far_future", "byte_flip", "not_object", "missing", "control_char", "control_text",
             "duplicate_key", "too_large", "resend")
WEIGHTS = (1,) * len(MUTATIONS)
TOO_LARGE_SHARE = 0.0005
"""``too_large`` (lines of a mebibyte or more) is drawn this rarely by :func:`records`, so a million
records stay quick to generate and run; every other mutation equally often."""

ANY = frozenset({"*"})
"""Any outcome (a byte flip may do anything, and must still be accounted for)."""

CONTROL_CHARACTERS = ("\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9b", "\x9f")
IDENTIFIER_FIELDS = (("user", "id"), ("user", "name"), ("event", "action"), ("event", "id"), ("host", "id"),
                     ("custodes", "recipient", "party"), ("destination", "domain"), ("url", "domain"),
                     ("custodes", "dataset", "name"), ("custodes", "case", "ref"), ("file", "name"),
                     ("custodes", "application", "id"), ("custodes", "group", "id"), ("custodes", "channel"))


class Fuzzed(NamedTuple):
    kind: str
    raw: bytes
    expected: frozenset[str]
    """The outcomes this record may have: dead-letter reasons, ``processed``, ``duplicate``, ``expired``
    (or :data:`ANY`)."""


def _set(doc: dict, path: tuple[str, ...], value: object) -> None:
    node = doc
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


_WRONG_TYPE_VALUES = ([1, 2], {"a": 1}, 3.5, True, None, -1, "xxx")


def _wrong_type_outcome(path: str, value: object) -> str:
    """What stream.contract.schema makes of ``value`` at ``path`` (the rules the fuzz checks it keeps)."""
    if path == "user":
        return "missing_user" if value is None else "processed" if type(value) in (int, str) else "wrong_type"
    if path == "@timestamp":
        return {type(None): "missing_timestamp", str: "bad_timestamp"}.get(type(value), "wrong_type")
    if value is None:
        return "processed"
    if path == "count":
        return "bad_value" if value == -1 and type(value) is int else "wrong_type"
    if path in ("activity", "sensitivity"):  # an integer is read as its digits: not a known kind either
        return "bad_value" if type(value) in (str, int) else "wrong_type"
    return "processed" if type(value) is dict else "wrong_type"  # event: an object, or nothing


def _base(rng: random.Random, now: float, i: int) -> dict:
    user = f"fz{rng.randrange(500):03d}"
    doc = export(user, now - rng.uniform(0, 3000), rng.randrange(1, 50), event_id=f"fz-{i}",
                 sensitivity=rng.choice(["low", "medium", "high"]))
    if rng.random() < 0.3:
        doc["message"] = "hello " * rng.randrange(1, 20)
    return doc


def record(rng: random.Random, now: float, i: int, max_huge: int = 70_000, max_event_bytes: int = 1_048_576,
           kind: str | None = None, previous: bytes | None = None) -> Fuzzed:
    """One fuzzed record; ``previous`` is an earlier valid record of the same run (for ``resend``)."""
    if kind is None:
        kind = rng.choices(MUTATIONS, WEIGHTS)[0]
    doc = _base(rng, now, i)
    expected = "processed"
    if kind == "resend" and previous is None:
        kind = "valid"
    if kind == "valid":
        raw = orjson.dumps(doc)
    elif kind == "resend":
        raw, expected = previous, "duplicate"
    elif kind == "truncate":
        full = orjson.dumps(doc)
        raw, expected = full[: rng.randrange(1, len(full) - 1)], "invalid_json"
    elif kind == "wrong_type":
        path = rng.choice(["user", "@timestamp", "count", "activity", "sensitivity", "event"])
        value = rng.choice(_WRONG_TYPE_VALUES)
        value = list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value
        expected = _wrong_type_outcome(path, value)
        if path == "user":
            doc["user"]["id"] = value
        elif path == "@timestamp":
            doc["@timestamp"] = value
        elif path == "count":
            doc["custodes"]["record"]["count"] = value
        elif path == "activity":
            doc["custodes"]["activity"] = value
        elif path == "sensitivity":
            doc["custodes"]["dataset"]["sensitivity"] = value
        else:
            doc["event"] = value
        raw = orjson.dumps(doc)
    elif kind == "huge_string":
        field = rng.choice(["user", "message", "dataset", "domain"])
        # past max_string_chars (1,024); a message past max_content_chars (65,536)
        big = "A" * (rng.randrange(66_000, max_huge) if field == "message" else rng.randrange(1_100, 10_000))
        if field == "user":
            doc["user"]["id"] = big
        elif field == "message":
            doc["message"] = big
        elif field == "dataset":
            doc["custodes"]["dataset"]["name"] = big
        else:
            doc["destination"] = {"domain": big}
        raw, expected = orjson.dumps(doc), "oversized_field"
    elif kind == "deep_nesting":
        depth = rng.randrange(17, 3000)
        raw = orjson.dumps(doc)[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
        expected = "too_deeply_nested"
    elif kind == "bad_utf8":
        full = orjson.dumps(doc)
        at = rng.randrange(1, len(full) - 1)
        raw = full[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"]) + full[at:]
        expected = "not_utf8"
    elif kind == "nan":
        raw = orjson.dumps(doc).replace(b'"count":', b'"count":' + rng.choice([b"NaN", b"Infinity", b"-Infinity"])
                                        + b',"was":', 1)
        expected = "invalid_json"
    elif kind == "far_past":
        doc["@timestamp"] = rng.choice(["1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
                                        iso(now - 800 * 86400)])
        raw, expected = orjson.dumps(doc), "expired"
    elif kind == "far_future":
        doc["@timestamp"] = rng.choice(["9999-12-31T23:59:59Z", iso(now + 30 * 86400), "2200-01-01T00:00:00+05:00"])
        raw, expected = orjson.dumps(doc), "timestamp_in_future"
    elif kind == "byte_flip":
        full = bytearray(orjson.dumps(doc))
        for _ in range(rng.randrange(1, 4)):
            full[rng.randrange(len(full))] = rng.randrange(256)
        raw, expected = bytes(full), "*"
    elif kind == "not_object":
        raw, expected = rng.choice([b"[1,2]", b"42", b'"text"', b"null", b"true"]), "not_an_object"
    elif kind == "control_char":
        # in an identifier: rejected with its own reason (written as JSON escapes, raw DEL or C1 UTF-8)
        char = rng.choice(CONTROL_CHARACTERS)
        _set(doc, rng.choice(IDENTIFIER_FIELDS), rng.choice(["", "ab"]) + char + rng.choice(["", "cd"]))
        if doc["user"]["id"].isspace():  # "\t" alone is a blank user id
            doc["user"]["id"] += "x"
        raw, expected = orjson.dumps(doc), "control_character"
    elif kind == "control_text":
        # in free text: kept (NUL too), processed
        doc["message"] = "call me" + "".join(rng.choice(CONTROL_CHARACTERS) for _ in range(rng.randrange(1, 5)))
        raw = orjson.dumps(doc)
    elif kind == "duplicate_key":
        # JSON with a key twice: the last one counts (RFC 8259 leaves it open; orjson keeps the last)
        full = orjson.dumps(doc)
        variant = rng.randrange(4)
        if variant == 0:
            raw, expected = full[:-1] + b',"@timestamp":"yesterday"}', "bad_timestamp"
        elif variant == 1:
            raw = b'{"@timestamp":"yesterday",' + full[1:]
        elif variant == 2:
            raw = b'{"user":{"id":"a\\u0000b"},' + full[1:]
        else:
            raw, expected = full[:-1] + b',"user":{"id":"a\\u0000b"}}', "control_character"
    elif kind == "too_large":
        doc["message"] = "A" * (max_event_bytes + rng.randrange(1, 4096))
        raw, expected = orjson.dumps(doc), "event_too_large"
    else:  # missing
        field = rng.choice(["user", "@timestamp"])
        doc.pop(field)
        raw, expected = orjson.dumps(doc), "missing_user" if field == "user" else "missing_timestamp"
    if b"\n" in raw:
        raw, expected = raw.replace(b"\n", b" "), "*"
    if not raw.strip():
        raw, expected = b"{", "invalid_json"
    return Fuzzed(kind, raw, ANY if expected == "*" else frozenset({expected}))


def records(n: int, now: float, seed: int = 1, max_huge: int = 70_000, max_event_bytes: int = 1_048_576
            ) -> Iterator[Fuzzed]:
    """``n`` fuzzed records (a share of :data:`TOO_LARGE_SHARE` over ``max_event_bytes``)."""
    rng = random.Random(seed)
    previous: bytes | None = None
    for i in range(n):
        kind = "too_large" if rng.random() < TOO_LARGE_SHARE else rng.choice(MUTATIONS[:-2] + MUTATIONS[-1:])
        fuzzed = record(rng, now, i, max_huge, max_event_bytes, kind, previous)
        if fuzzed.kind == "valid":
            previous = fuzzed.raw
        yield fuzzed


def batches(lines: list[bytes], max_lines: int = 200, max_bytes: int = 700_000) -> list[bytes]:
    out, cur, size = [], [], 0
    for line in lines:
        if cur and (len(cur) >= max_lines or size + len(line) > max_bytes):
            out.append(b"\n".join(cur))
            cur, size = [], 0
        cur.append(line)
        size += len(line) + 1
    if cur:
        out.append(b"\n".join(cur))
    return out


def _derived_id(raw: bytes) -> str:
    """The id stream.contract.schema gives an event without event.id."""
    return "sha-" + hashlib.blake2b(raw, digest_size=12).hexdigest()


def per_record(pipeline, fuzzed: Iterable[Fuzzed], max_lines: int = 200) -> tuple[Counter, list[str], dict]:
    """Run ``fuzzed`` through ``pipeline`` in messages of ``max_lines`` records, one message at a time,
    as the worker does, and tell each record's outcome: its dead-letter reason, ``processed``,
    ``duplicate`` or ``expired``. Returns (outcomes by (mutation, outcome), the records whose outcome is
    not one they may have, as text without their content, and the totals). Every base event has a
    unique id ("fz-<i>", or the one derived from its bytes when a mutation took it away), so a processed
    event is found by its id."""
    states: dict[str, bytes] = {}
    by_kind: Counter = Counter()
    wrong: list[str] = []
    totals = {"consumed": 0, "processed": 0, "expired": 0, "duplicates": 0, "dead_lettered": Counter()}
    source = iter(fuzzed)
    start = 0
    for offset in itertools.count():
        chunk = list(itertools.islice(source, max_lines))
        if not chunk:
            break
        split = pipeline.split(b"\n".join(f.raw for f in chunk), "fuzz", 0, offset)
        totals["consumed"] += split.consumed
        totals["expired"] += split.expired
        dead = {letter.line: letter.reason for letter in split.dead}
        ids: Counter = Counter()
        for user, events in split.groups.items():
            out = pipeline.apply(user, events, states.get(user), "e", 0, offset, digests=split.digests.get(user))
            if out.state is None:
                states.pop(user, None)
            else:
                states[user] = out.state
            for letter in pipeline.failure_letters(out.failures, "fuzz", 0, offset):
                totals["dead_lettered"][letter.reason] += 1
            totals["processed"] += len(events) - len({id(f.event) for f in out.failures})
            totals["duplicates"] += out.duplicates
            ids.update(ev.id for ev in events)
        for reason in dead.values():
            totals["dead_lettered"][reason] += 1
        for line, f in enumerate(chunk, 1):
            if line in dead:
                got = dead[line]
            elif ids[f"fz-{start + line - 1}"] or ids[_derived_id(f.raw)] or f.kind == "resend":
                got = "processed"
            else:
                got = "expired"
            if f.kind == "resend" and got == "processed":
                got = "duplicate"  # checked in total: the state tells how many re-sends it recognised
            by_kind[(f.kind, got)] += 1
            if "*" not in f.expected and got not in f.expected:
                wrong.append(f"record {start + line - 1} ({f.kind}): expected {sorted(f.expected)}, got {got}")
        start += len(chunk)
    resends = sum(n for (kind, got), n in by_kind.items() if got == "duplicate")
    if totals["duplicates"] != resends:
        wrong.append(f"{resends} re-sent records, {totals['duplicates']} recognised as duplicates")
    return by_kind, wrong, totals


def outcomes(pipeline, messages: list[bytes]) -> dict:
    """consumed / processed / expired / dead letters by reason, as the worker would count them."""
    from stream.offline.replay import ReplayResult, run_messages

    result = run_messages(pipeline, (ReplayResult(), iter(messages)))
    return {"consumed": result.consumed, "processed": result.processed, "expired": result.expired,
            "dead_lettered": Counter(result.dead_lettered)}


# -- alerts for the sink and the store ----------------------------------------------------------------

ALERT_MUTATIONS = ("valid", "control_text", "control_subject", "time_out_of_range", "count_overflow",
                   "long_detector", "wide_subject", "not_an_alert", "truncate", "refold")


def _alert(rng: random.Random, i: int) -> dict:
    from detectors.alert import alert_id

    subject = f"fz{rng.randrange(500):03d}"
    ts = 1_770_000_000.0 + rng.randrange(10**6)
    return {"id": alert_id("bulk_export", subject, f"fz:{i}"), "detector": "bulk_export", "detector_version": 1,
            "severity": rng.choice(["low", "medium", "high", "critical"]), "score": rng.uniform(0, 100),
            "subject": subject, "title": "Bulk export", "explanation": "why", "ts": ts, "first_seen": ts - 60,
            "last_seen": ts, "evidence_event_ids": [f"fz-{i}"], "evidence": [{"id": f"fz-{i}", "content": "hello"}],
            "count": 1, "facts": {"records": rng.randrange(1, 10**6)}}


def alert_records(n: int, seed: int = 1) -> list[Fuzzed]:
    """``n`` alert messages as the worker would send them, some mutated. Outcomes: ``stored``, or the
    sink's dead-letter reason (stream.store.sink.SINK_REASONS); some depend on the database (SQLite is
    lenient where PostgreSQL refuses), so either is allowed there."""
    rng = random.Random(seed)
    out: list[Fuzzed] = []
    sent: list[dict] = []
    for i in range(n):
        kind = rng.choice(ALERT_MUTATIONS)
        alert = _alert(rng, i)
        expected = {"stored"}
        char = rng.choice(CONTROL_CHARACTERS)
        if kind == "control_text":  # free text: stored (PostgreSQL cannot hold NUL: it becomes U+2400)
            alert["title"] += char
            alert["evidence"][0]["content"] += char + "\x00"
            alert["facts"]["note\x00"] = "a\x00b"
        elif kind == "control_subject":  # from a worker older than control_character: stored all the same
            alert["subject"] += char
        elif kind == "time_out_of_range":
            alert[rng.choice(["ts", "first_seen", "last_seen"])] = rng.choice([1e20, -1e20, 1e300])
            expected = {"bad_value"}
        elif kind == "count_overflow":  # beyond SQLite's 64-bit and PostgreSQL's 32-bit INTEGER
            alert["count"] = rng.choice([2**63, 2**64 - 1])
            expected = {"bad_value", "data_error"}
        elif kind == "long_detector":  # VARCHAR(64): PostgreSQL refuses, SQLite stores
            alert["detector"] = "d" * 100
            expected = {"stored", "data_error"}
        elif kind == "wide_subject":  # 1,024 four-byte characters: too wide for PostgreSQL's btree index
            alert["subject"] = "".join(chr(rng.randrange(0x1F300, 0x1F6FF)) for _ in range(1024))
            expected = {"stored", "data_error"}
        elif kind == "not_an_alert":
            alert = rng.choice([{"id": "x"}, {**alert, "severity": "grave"}, {**alert, "score": 500},
                                {**alert, "unknown": 1}, [1, 2], "text"])
            expected = {"undecodable"}
        elif kind == "refold" and sent:  # an alert already sent, folding more hits
            alert = {**rng.choice(sent), "count": rng.randrange(2, 100)}
        raw = orjson.dumps(alert)
        if kind == "truncate":
            raw, expected = raw[: rng.randrange(1, len(raw) - 1)], {"undecodable"}
        elif expected == {"stored"} and isinstance(alert, dict):
            sent.append(alert)
        out.append(Fuzzed(kind, raw, frozenset(expected)))
    return out


def sink_outcomes(sink, fuzzed: list[Fuzzed], batch_size: int = 500) -> tuple[Counter, list[str]]:
    """Run alert messages through ``sink`` (its decode and write, as its Kafka loop does, in batches of
    ``batch_size``) and check each one's outcome against what it may have, and that the store holds
    exactly the alerts stored. Returns outcomes by (mutation, outcome) and the problems found."""
    from stream.store.sink import Origin

    by_kind: Counter = Counter()
    wrong: list[str] = []
    stored_ids: set[str] = set()
    for start in range(0, len(fuzzed), batch_size):
        chunk = fuzzed[start:start + batch_size]
        sink.letters.clear()
        batch, origins = sink.decode([Origin(f.raw, "fuzz-alerts", 0, start + j) for j, f in enumerate(chunk)])
        sink.write(batch, sleep=lambda s: None, origins=origins)
        dead = {letter.origin.offset: letter.reason for letter in sink.letters}
        for j, f in enumerate(chunk):
            got = dead.get(start + j, "stored")
            if got == "stored":
                stored_ids.add(orjson.loads(f.raw)["id"])
            by_kind[(f.kind, got)] += 1
            if got not in f.expected:
                wrong.append(f"alert {start + j} ({f.kind}): expected {sorted(f.expected)}, got {got}")
    if sink.store.ids() != stored_ids:
        wrong.append(f"the store holds {len(sink.store.ids())} alerts, {len(stored_ids)} were stored")
    return by_kind, wrong
