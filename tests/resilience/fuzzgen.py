"""Mutated audit records for fuzz runs (tests/resilience/test_fuzz.py, bench/fuzz.py).

Each record is one line (no b"\\n" inside, never blank): a valid canonical event, or one mutated by
truncation, wrong types, huge strings, deep nesting, invalid UTF-8, NaN/Infinity, far-past or
far-future times, or random byte flips. ``outcomes`` runs records through ``Pipeline`` in-process
(exactly what the worker runs per message) and is the oracle the Kafka run is reconciled against.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

import orjson

from tests.stream.events import export, iso

MUTATIONS = ("valid", "truncate", "wrong_type", "huge_string", "deep_nesting", "bad_utf8", "nan",
             "far_past", "far_future", "byte_flip", "not_object", "missing")


def _base(rng: random.Random, now: float, i: int) -> dict:
    user = f"fz{rng.randrange(500):03d}"
    doc = export(user, now - rng.uniform(0, 3000), rng.randrange(1, 50), event_id=f"fz-{i}",
                 sensitivity=rng.choice(["low", "medium", "high"]))
    if rng.random() < 0.3:
        doc["message"] = "hello " * rng.randrange(1, 20)
    return doc


def record(rng: random.Random, now: float, i: int, max_huge: int = 70_000) -> tuple[str, bytes]:
    kind = rng.choice(MUTATIONS)
    doc = _base(rng, now, i)
    if kind == "valid":
        raw = orjson.dumps(doc)
    elif kind == "truncate":
        full = orjson.dumps(doc)
        raw = full[: rng.randrange(1, len(full) - 1)]
    elif kind == "wrong_type":
        path = rng.choice(["user", "@timestamp", "count", "activity", "sensitivity", "event"])
        value = rng.choice([[1, 2], {"a": 1}, 3.5, True, None, -1, "x" * 3])
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
        raw = orjson.dumps(doc)
    elif kind == "deep_nesting":
        depth = rng.randrange(17, 3000)
        raw = orjson.dumps(doc)[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "bad_utf8":
        full = orjson.dumps(doc)
        at = rng.randrange(1, len(full) - 1)
        raw = full[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"]) + full[at:]
    elif kind == "nan":
        raw = orjson.dumps(doc).replace(b'"count":', b'"count":' + rng.choice([b"NaN", b"Infinity", b"-Infinity"])
                                        + b',"was":', 1)
    elif kind == "far_past":
        doc["@timestamp"] = rng.choice(["1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
                                        iso(now - 800 * 86400)])
        raw = orjson.dumps(doc)
    elif kind == "far_future":
        doc["@timestamp"] = rng.choice(["9999-12-31T23:59:59Z", iso(now + 30 * 86400), "2200-01-01T00:00:00+05:00"])
        raw = orjson.dumps(doc)
    elif kind == "byte_flip":
        full = bytearray(orjson.dumps(doc))
        for _ in range(rng.randrange(1, 4)):
            full[rng.randrange(len(full))] = rng.randrange(256)
        raw = bytes(full)
    elif kind == "not_object":
        raw = rng.choice([b"[1,2]", b"42", b'"text"', b"null", b"true"])
    else:  # missing
        doc.pop(rng.choice(["user", "@timestamp"]))
        raw = orjson.dumps(doc)
    raw = raw.replace(b"\n", b" ")
    if not raw.strip():
        raw = b"{"
    return kind, raw


def records(n: int, now: float, seed: int = 1, max_huge: int = 70_000) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    for i in range(n):
        yield record(rng, now, i, max_huge)


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


def outcomes(pipeline, messages: list[bytes]) -> dict:
    """consumed / processed / expired / dead letters by reason, as the worker would count them."""
    from stream.replay import ReplayResult, run_messages

    result = run_messages(pipeline, (ReplayResult(), iter(messages)))
    return {"consumed": result.consumed, "processed": result.processed, "expired": result.expired,
            "dead_lettered": Counter(result.dead_lettered)}
