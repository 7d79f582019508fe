"""Property tests of the canonical event codec (stream.contract.schema): round trips, and that decoding any
input either gives an Event or an Invalid with a known reason, never another exception."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import json
import unicodedata
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.event import ACTIVITY_KINDS, SENSITIVITIES, Event
from stream.contract import schema
from stream.contract.schema import DEFAULT_LIMITS, REASONS, Invalid, Limits, decode, lookup, parse, validate

KINDS = sorted(ACTIVITY_KINDS)
PATHS = (
    "@timestamp", "user.id", "user.name", "event.id", "event.action", "event.outcome", "host.id", "message",
    "source.geo.location.lat", "source.geo.location.lon", "destination.domain", "url.domain", "file.name",
    "email.to.address", "custodes.schema_version", "custodes.activity", "custodes.channel",
    "custodes.policy_set", "custodes.application.id", "custodes.group.id", "custodes.case.ref",
    "custodes.recipient.party", "custodes.dataset.name", "custodes.dataset.sensitivity",
    "custodes.record.ids", "custodes.record.count", "custodes.aggregate.min_group_size", "custodes.media",
    "custodes.object.id", "custodes.share.visibility", "file.extension", "email.attachments",
    "custodes.identity.alias",
)
"""Every field stream.contract.schema.validate reads (tests/stream/contract/test_json_schema.py checks the list)."""

def idents(**kw: Any) -> st.SearchStrategy[str]:
    """Text fit for an identifier field: no control character (stream.contract.schema rejects those), not blank."""
    return st.text(st.characters(exclude_categories=("Cc", "Cs")), **kw).filter(lambda t: not t.isspace())


SLOW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
timestamps = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC) | st.timezones()
)


def place(doc: dict[str, Any], path: str, value: Any, form: int) -> None:
    """Put ``value`` at ``path`` nested ``form`` levels deep with the rest as one dotted key (ECS
    allows all of them): form 0 is ``{"a.b.c": v}``, form 2 ``{"a": {"b": {"c": v}}}``."""
    parts = path.split(".")
    depth = min(form, len(parts) - 1)
    node = doc
    for part in parts[:depth]:
        node = node.setdefault(part, {})
    node[".".join(parts[depth:])] = value


@st.composite
def canonical_docs(draw: st.DrawFn) -> tuple[dict[str, Any], datetime, str, str]:
    """A valid canonical document, and the timestamp, user id and kind it must decode to. Each field is
    given in one form only (nested, dotted or in between), the same form for a whole ECS object."""
    when = draw(timestamps)
    user = draw(idents(min_size=1, max_size=40) | int64 | idents(min_size=1000, max_size=1024))
    kind = draw(st.none() | st.sampled_from(KINDS))
    forms: dict[str, int] = {}

    def put(path: str, value: Any) -> None:
        top = path.split(".")[0]
        place(doc, path, value, forms.setdefault(top, draw(st.integers(0, 3))))

    doc: dict[str, Any] = {"@timestamp": when.isoformat()}
    put("user.id", user)
    if kind is not None:
        put("custodes.activity", kind)
    if draw(st.booleans()):
        put("user.name", draw(idents(max_size=20)))
    if draw(st.booleans()):
        put("event.id", draw(idents(min_size=1, max_size=30)))
    if draw(st.booleans()):
        put("custodes.record.ids", draw(st.lists(idents(max_size=12) | int64, max_size=5)))
        put("custodes.record.count", draw(st.integers(0, 10**12)))
    if draw(st.booleans()):
        put("custodes.dataset.sensitivity", draw(st.sampled_from(SENSITIVITIES)))
    if draw(st.booleans()):
        put("source.geo.location.lat", draw(st.floats(-90, 90)))
        put("source.geo.location.lon", draw(st.floats(-180, 180)))
    if draw(st.booleans()):
        doc["message"] = draw(st.text(max_size=200))  # free text: control characters allowed
        put("custodes.media", [{"type": "image", "name": draw(st.text(max_size=10))}])
    return doc, when, str(user), kind or "other"


@SLOW
@given(canonical_docs())
def test_valid_documents_round_trip(case: tuple[dict[str, Any], datetime, str, str]) -> None:
    doc, when, user, kind = case
    event = parse(orjson.dumps(doc))
    assert (event.user_id, event.ts, event.kind) == (user, when.timestamp(), kind)
    assert event.id  # given, or derived from the bytes
    again = parse(orjson.dumps(orjson.loads(orjson.dumps(doc))))
    assert (again.id, again.user_id, again.ts, again.kind) == (event.id, event.user_id, event.ts, event.kind)


def assert_invalid_or_event(call: Any) -> None:
    try:
        call()
    except Invalid as exc:
        assert exc.reason in REASONS


@SLOW
@given(st.binary(max_size=2000))
def test_any_bytes_give_an_event_or_invalid(raw: bytes) -> None:
    assert_invalid_or_event(lambda: parse(raw))


json_scalars = st.none() | st.booleans() | int64 | st.floats(allow_nan=False, allow_infinity=False) | st.text()
_SEGMENTS = sorted({part for p in PATHS for part in p.split(".")} | {""})
json_keys = (
    st.sampled_from(PATHS) | st.text(max_size=8)
    | st.lists(st.sampled_from(_SEGMENTS), min_size=1, max_size=4).map(".".join)  # any dotted combination
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_keys, inner, max_size=6),
    max_leaves=30,
)


@st.composite
def near_valid_docs(draw: st.DrawFn) -> dict[str, Any]:
    """Documents with every known field in some form holding anything: reaches every check."""
    doc: dict[str, Any] = {}
    for path in draw(st.lists(st.sampled_from(PATHS), unique=True, max_size=len(PATHS))):
        value = draw(
            json_values | timestamps.map(datetime.isoformat) | st.sampled_from(KINDS) | st.integers(-5, 10**13)
            | st.floats(-200, 200) | st.lists(st.dictionaries(st.text(max_size=3), json_scalars), max_size=3)
        )
        place(doc, path, value, draw(st.integers(0, 3)))
    return doc


@SLOW
@given(json_values | near_valid_docs())
def test_any_json_gives_an_event_or_invalid(value: Any) -> None:
    raw = orjson.dumps(value)
    assert_invalid_or_event(lambda: parse(raw))
    if isinstance(value, dict):
        assert_invalid_or_event(lambda: validate(value))


@given(st.integers(min_value=17, max_value=40))
def test_depth_limit(depth: int) -> None:
    ok: Any = "x"
    for _ in range(15):
        ok = [ok]
    deep: Any = "x"
    for _ in range(depth - 1):
        deep = [deep]
    base = {"@timestamp": "2024-01-01T00:00:00Z", "user.id": "u"}
    parse(orjson.dumps({**base, "a": ok}))  # 16 levels with the document
    with pytest.raises(Invalid) as exc:
        parse(orjson.dumps({**base, "a": deep}))
    assert exc.value.reason == "too_deeply_nested"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe{}", "not_utf8"),
        (b"{", "invalid_json"),
        (b"[1]", "not_an_object"),
        (b'{"user.id": "u"}', "missing_timestamp"),
        (b'{"@timestamp": "2024-01-01T00:00:00", "user.id": "u"}', "timestamp_without_timezone"),
        (b'{"@timestamp": "2024-02-30T00:00:00Z", "user.id": "u"}', "bad_timestamp"),
        (b'{"@timestamp": "2024-01-01T00:00:00Z"}', "missing_user"),
        (b'{"@timestamp": "2024-01-01T00:00:00Z", "user.id": "u", "custodes.activity": "x"}', "bad_value"),
        (b'{"@timestamp": "2024-01-01T00:00:00Z", "user.id": "u", "custodes": {"schema_version": 2}}',
         "unsupported_version"),
        (b'{"@timestamp": "2024-01-01T00:00:00Z", "user": {"id": ["u"]}}', "wrong_type"),
        (b'{"@timestamp": "2024-01-01T00:00:00Z", "user": {"id": "u\\u0000"}}', "control_character"),
        (b'{"@timestamp": "2024-01-01T00:00:00Z", "user": {"id": " \\t "}}', "missing_user"),
        (b'{"@timestamp": "2024-01-01T00:00:00Z", "user": {"id": " ", "name": "  "}}', "missing_user"),
    ],
)
def test_reasons(raw: bytes, reason: str) -> None:
    with pytest.raises(Invalid) as exc:
        parse(raw)
    assert exc.value.reason == reason


def test_dotted_and_nested_forms_are_the_same_event() -> None:
    nested = {"@timestamp": "2024-01-01T00:00:00Z", "event": {"id": "e"}, "user": {"id": "u"},
              "custodes": {"activity": "export", "record": {"count": 3}}}
    dotted = {"@timestamp": "2024-01-01T00:00:00Z", "event.id": "e", "user.id": "u",
              "custodes.activity": "export", "custodes.record.count": 3}
    between = {"@timestamp": "2024-01-01T00:00:00Z", "event": {"id": "e"}, "user": {"id": "u"},
               "custodes": {"activity": "export", "record.count": 3}}
    events = [validate(d) for d in (nested, dotted, between)]
    assert {(e.id, e.user_id, e.kind, e.records) for e in events} == {("e", "u", "export", 3)}


def test_dotted_key_next_to_its_object() -> None:
    """ECS/Elasticsearch read ``{"custodes": {"record": {…}, "record.ids": […]}}`` as one record object."""
    base = {"@timestamp": "2024-01-01T00:00:00Z", "user.id": "u"}
    for doc in ({**base, "custodes": {"record": {"count": 2}, "record.ids": ["a", "b"]}},
                {**base, "custodes.record": {"ids": ["a", "b"]}, "custodes": {"record.count": 2}}):
        event = validate(doc)
        assert (event.record_ids, event.record_count) == (("a", "b"), 2)


def test_lookup_of_a_dotted_key_next_to_its_object() -> None:
    doc = {"custodes": {"record": {"count": 2}, "record.ids": ["a", "b"]}}
    assert lookup(doc, "custodes.record.ids") == ["a", "b"]


def test_decode_limits() -> None:
    with pytest.raises(Invalid) as exc:
        decode(b" " * 1_048_577)
    assert exc.value.reason == "event_too_large"


# validate takes shortcuts (one pass over documents of the usual shape; depth and dotted keys judged from
# the bytes, or not at all for closed documents). These tests hold it to the plain reading: walk for depth,
# expand dotted keys, then read field by field (stream.contract.schema._checked_event).

def plain_validate(doc: dict[str, Any], raw: bytes | None, limits: Limits) -> Event:
    return plain_controls(plain_fields(doc, raw, limits))


FREE_TEXT = ("content", "media", "doc", "raw")


def plain_controls(event: Event) -> Event:
    """Invalid(control_character) for the first identifier attribute (any string attribute but free
    text) holding a character of Unicode category Cc: C0, DEL and C1."""
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name in FREE_TEXT:
            continue
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, str) and any(unicodedata.category(c) == "Cc" for c in item):
                path = schema._ATTR_PATHS.get(f.name, f.name)
                raise Invalid("control_character", f"{path} holds a control character (C0, DEL or C1)")
    return event


def plain_fields(doc: dict[str, Any], raw: bytes | None, limits: Limits) -> Event:
    if not schema._depth_ok(doc, limits.max_depth):
        raise Invalid("too_deeply_nested", f"event nests deeper than {limits.max_depth} levels")
    if schema._has_dots(doc):
        doc = schema._expand(doc)
        event = schema._checked_event(doc, raw, limits)
        if not schema._depth_ok(doc, limits.max_depth):  # as deep as the same document written nested
            raise Invalid("too_deeply_nested", f"event nests deeper than {limits.max_depth} levels once "
                          "its dotted keys are expanded")
        return event
    return schema._checked_event(doc, raw, limits)


def outcome(read: Any, doc: dict[str, Any], raw: bytes | None, limits: Limits) -> tuple[Any, ...]:
    try:
        event = read(doc, raw, limits)
    except Invalid as exc:
        return ("invalid", exc.reason, exc.detail)
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name not in ("doc", "raw")}
    return ("event", fields, repr(event.document))  # the same keys in the same order


EDGE_VALUES = st.sampled_from(["", "low", "x" * 33, 0, -1, 10**12 + 1, 1.5, True, [], {}, ["a", 1]]).map(copy.deepcopy)


@st.composite
def changed_docs(draw: st.DrawFn, docs: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A document with some keys added or replaced: fields set to edge values, and unknown, dotted,
    null or deeply nested keys in any of its objects."""
    doc = draw(docs)
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            with contextlib.suppress(AttributeError, TypeError):  # an object on the way is something else
                place(doc, draw(st.sampled_from(PATHS)), draw(st.none() | EDGE_VALUES), 3)
            continue
        objects = [doc]
        for node in objects:
            objects.extend(v for v in node.values() if isinstance(v, dict))
        node = draw(st.sampled_from(objects))
        node[draw(st.sampled_from(["a.b", "extra"]) | st.sampled_from(_SEGMENTS) | json_keys)] = draw(
            st.none() | EDGE_VALUES | json_values | st.builds(lambda: [[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]))
    return doc


words = st.text(min_size=1, max_size=6)
FIELD_VALUES = {
    "custodes.activity": st.sampled_from(KINDS), "custodes.dataset.sensitivity": st.sampled_from(SENSITIVITIES),
    "custodes.record.ids": st.lists(words, max_size=3) | words, "email.to.address": st.lists(words, max_size=3),
    "custodes.record.count": st.integers(0, 10**12), "custodes.aggregate.min_group_size": st.integers(0, 10**12),
    "custodes.schema_version": st.just(1), "custodes.media": st.lists(st.dictionaries(words, json_values), max_size=2),
    "source.geo.location.lat": st.floats(-90, 90), "source.geo.location.lon": st.floats(-180, 180),
    "custodes.share.visibility": st.sampled_from(["anyone", "external", "domain", "internal"]),
    "email.attachments": st.lists(st.dictionaries(words, json_values), max_size=2),
    "file.extension": st.sampled_from(["pdf", "docx", "PDF", ".csv"]),
}


@st.composite
def usual_docs(draw: st.DrawFn) -> dict[str, Any]:
    """Valid documents of the usual shape (every key plain, strings as strings), with any fields."""
    doc: dict[str, Any] = {"@timestamp": draw(timestamps).isoformat(), "user": {"id": draw(words)}}
    for path in draw(st.lists(st.sampled_from(PATHS[2:]), unique=True, max_size=len(PATHS))):
        if path.startswith("source.geo.location"):
            doc["source"] = {"geo": {"location": {"lat": draw(FIELD_VALUES["source.geo.location.lat"]),
                                                  "lon": draw(FIELD_VALUES["source.geo.location.lon"])}}}
        else:
            place(doc, path, draw(FIELD_VALUES.get(path, words)), 3)
    return doc


nested_docs = canonical_docs().map(lambda case: schema._expand(case[0]))  # every key plain
LIMITS = (DEFAULT_LIMITS, Limits(max_depth=3), Limits(max_list_items=1),
          Limits(max_string_chars=4, max_content_chars=8))


def texts(doc: dict[str, Any]) -> list[bytes]:
    """``doc`` as compact JSON and with whitespace around every ``:``."""
    out = [orjson.dumps(doc)]
    with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate is not UTF-8
        out.append(json.dumps(doc, separators=(" , ", " : "), ensure_ascii=False).encode())
    return out


@settings(SLOW, max_examples=600)
@given(changed_docs(usual_docs() | nested_docs | canonical_docs().map(lambda case: case[0]) | near_valid_docs()),
       st.sampled_from(LIMITS))
def test_validate_agrees_with_the_plain_reading(doc: dict[str, Any], limits: Limits) -> None:
    for text in texts(doc):
        for raw in (text, None):
            plain = outcome(plain_validate, orjson.loads(text), raw, limits)
            assert outcome(validate, orjson.loads(text), raw, limits) == plain
            # keeping only the text of a closed document changes nothing an Event says
            assert outcome(functools.partial(validate, keep_doc=False), orjson.loads(text), raw, limits) == plain


@SLOW
@given(st.dictionaries(json_keys, json_values, max_size=6))
def test_dotted_keys_are_found_from_the_bytes(doc: dict[str, Any]) -> None:
    for raw in texts(doc):
        assert schema._could_have_dotted_keys(raw) or not schema._has_dots(orjson.loads(raw))


def test_escaped_dot_in_a_key() -> None:
    raw = b'{"@timestamp": "2024-01-01T00:00:00.5Z", "user\\u002eid": "u", "x": {"a\\u002Eb": 1}}'
    event = parse(raw)
    assert (event.user_id, event.doc["x"]) == ("u", {"a": {"b": 1}})


def test_closed_document_is_the_decoded_one_and_others_are_expanded() -> None:
    doc = {"@timestamp": "2024-01-01T00:00:00Z", "user": {"id": "u"}, "custodes": {"record": {"ids": ["a"]}}}
    assert validate(doc).doc is doc
    with pytest.raises(Invalid) as exc:  # 4 levels: a closed document still obeys a lower limit
        validate(doc, orjson.dumps(doc), Limits(max_depth=3))
    assert exc.value.reason == "too_deeply_nested"
    doc["agent"] = {"ephemeral.id": 1}  # a dotted key where validate reads nothing is expanded too
    assert validate(doc).doc["agent"] == {"ephemeral": {"id": 1}}


def test_keep_doc_false_keeps_the_text_of_a_closed_document_only() -> None:
    doc = {"@timestamp": "2024-01-01T00:00:00Z", "user": {"id": "u"}, "custodes": {"record": {"ids": ["a"]}}}
    raw = orjson.dumps(doc)
    event = validate(orjson.loads(raw), raw, keep_doc=False)
    assert event.doc is None and event.raw is raw and event.document == doc
    assert validate(orjson.loads(raw), raw).doc == doc and validate(orjson.loads(raw), raw).raw is None
    doc["custodes"]["record"]["postcode_area"] = "SW1"  # a field with no attribute: not closed
    raw = orjson.dumps(doc)
    event = validate(orjson.loads(raw), raw, keep_doc=False)
    assert event.doc == doc and event.raw is None
    assert validate(doc, None, keep_doc=False).doc is doc  # no text to keep


FULL = {
    "@timestamp": "2024-01-01T00:00:00.5+01:00", "user": {"id": "u1", "name": "Ann"},
    "event": {"id": "e1", "action": "view", "outcome": "ok"}, "host": {"id": "h"}, "message": "hi",
    "source": {"geo": {"location": {"lat": 51.5, "lon": -0.1}}}, "destination": {"domain": "d.org"},
    "url": {"domain": "u.org"}, "file": {"name": "f.txt", "extension": "txt"},
    "email": {"to": {"address": ["a@b"]}, "attachments": [{"file": {"name": "f.txt"}}]},
    "custodes": {"schema_version": 1, "activity": "export", "channel": "usb", "policy_set": "p",
                 "application": {"id": "app"}, "group": {"id": "g"}, "case": {"ref": "c"},
                 "recipient": {"party": "r"}, "dataset": {"name": "n", "sensitivity": "high"},
                 "record": {"ids": ["a", "b"], "count": 2}, "aggregate": {"min_group_size": 5},
                 "object": {"id": "drive:1"}, "share": {"visibility": "anyone"}, "identity": {"alias": "U1@x.org"}},
}
"""Every field validate reads, in the usual shape (and closed but for email.attachments: no other key, no
null)."""
DEEP = [[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]
EDGES = (None, "", "low", "export", "x" * 33, "x" * 65, "x" * 1025, 0, -1, 10**12 + 1, 2**64, 1.5, True,
         [], ["a", "b"], [1], ["x" * 1025], {}, {"a": 1}, {"a.b": 1}, DEEP, [{"a": DEEP}])
OBJECTS = tuple(sorted({path.rsplit(".", i)[0] for path in PATHS for i in range(1, path.count(".") + 1)}))


def agree(doc: dict[str, Any]) -> None:
    try:
        raws: tuple[bytes | None, ...] = (orjson.dumps(doc), None)
    except TypeError:  # a number outside the 64-bit range: only from Python
        raws = (None,)
    for limits in LIMITS:
        for raw in raws:
            assert outcome(validate, copy.deepcopy(doc), raw, limits) == outcome(
                plain_validate, copy.deepcopy(doc), raw, limits), (doc, limits, raw)


@pytest.mark.parametrize("path", PATHS + OBJECTS)
def test_each_field_at_its_edges_agrees_with_the_plain_reading(path: str) -> None:
    for base in (FULL, {"@timestamp": FULL["@timestamp"], "user": {"id": "u"}}):
        for value in EDGES:
            for form in (0, 3):  # dotted, nested
                doc = copy.deepcopy(base)
                place(doc, path, copy.deepcopy(value), form)
                agree(doc)


def test_any_object_with_another_key_agrees_with_the_plain_reading() -> None:
    objects = [FULL]
    for node in objects:
        objects.extend(v for v in node.values() if isinstance(v, dict))
    for i in range(len(objects)):
        for key, value in (("other", 1), ("other", None), ("a.b", 1), ("deep", DEEP), ("media", [{"a": DEEP}])):
            doc = copy.deepcopy(FULL)
            copies = [doc]
            for node in copies:
                copies.extend(v for v in node.values() if isinstance(v, dict))
            copies[i][key] = value
            agree(doc)


def test_dotted_keys_that_nest_too_deeply_once_expanded_are_rejected():
    limits = Limits()
    key = ".".join(["a"] * (limits.max_depth + 1))
    raw = orjson.dumps({"@timestamp": "2026-03-02T09:00:00Z", "user.id": "u1", key: 1})
    with pytest.raises(Invalid) as exc:
        validate(decode(raw, limits), raw, limits)
    assert exc.value.reason == "too_deeply_nested"
    # a huge one is rejected too, rather than producing a document orjson cannot write back
    raw = orjson.dumps({"@timestamp": "2026-03-02T09:00:00Z", "user.id": "u1", "x" + ".x" * 100_000: 1})
    with pytest.raises(Invalid) as exc:
        validate(decode(raw, limits), raw, limits)
    assert exc.value.reason == "too_deeply_nested"
    # within the limit, dotted keys still expand
    ok = orjson.dumps({"@timestamp": "2026-03-02T09:00:00Z", "user.id": "u1", "a.b.c": 1})
    assert validate(decode(ok, limits), ok, limits).doc["a"]["b"]["c"] == 1


CONTROL_CHARACTERS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]
IDENTIFIER_PATHS = [p for p in PATHS if p not in (
    "@timestamp", "message", "source.geo.location.lat", "source.geo.location.lon", "custodes.schema_version",
    "custodes.activity", "custodes.dataset.sensitivity", "custodes.record.count",
    "custodes.aggregate.min_group_size", "custodes.media",
    "custodes.share.visibility",  # an enum: any other value, control characters included, is bad_value
    "email.attachments")]  # a list of objects (counted), not an identifier


@pytest.mark.parametrize("path", IDENTIFIER_PATHS)
@pytest.mark.parametrize("char", ["\x00", "\n", "\x1b", "\x7f", "\x85", "\x9f"])
def test_a_control_character_in_an_identifier_is_rejected_with_its_own_reason(path: str, char: str) -> None:
    doc: dict[str, Any] = {"@timestamp": "2024-01-01T00:00:00Z", "user": {"id": "alice"}}
    value = f"ab{char}cd"
    place(doc, path, [value] if path in ("custodes.record.ids", "email.to.address") else value, 3)
    for raw in (orjson.dumps(doc), json.dumps(doc, ensure_ascii=False).encode(), None):
        with pytest.raises(Invalid) as caught:
            validate(orjson.loads(raw) if raw else copy.deepcopy(doc), raw)
        assert (caught.value.reason, caught.value.detail) == (
            "control_character", f"{path} holds a control character (C0, DEL or C1)")
        assert "ab" not in caught.value.detail  # names the field, never echoes the value


def test_free_text_keeps_control_characters_and_identifiers_keep_other_text() -> None:
    doc = {"@timestamp": "2024-01-01T00:00:00Z", "user": {"id": "DOM\\alice"},
           "event": {"action": "vu\u00e9 \u2028 \u00a0\u00a3"}, "message": "line 1\nline\x002\t\x85"}
    event = parse(orjson.dumps(doc))
    assert (event.user_id, event.action, event.content) == (
        "DOM\\alice", "vu\u00e9 \u2028 \u00a0\u00a3", "line 1\nline\x002\t\x85")


@SLOW
@given(st.text(max_size=8), st.sampled_from(CONTROL_CHARACTERS), st.text(max_size=8), st.sampled_from(IDENTIFIER_PATHS),
       st.integers(0, 3))
def test_any_control_character_anywhere_in_an_identifier_is_rejected(
        before: str, char: str, after: str, path: str, form: int) -> None:
    doc: dict[str, Any] = {"@timestamp": "2024-01-01T00:00:00Z"}
    if path != "user.id":
        doc["user"] = {"id": "alice"}
    place(doc, path, before + char + after, form)
    for raw in texts(doc):
        with pytest.raises(Invalid) as caught:
            parse(raw)
        assert caught.value.reason in ("control_character", "missing_user")  # " \t" as user.id is blank


@pytest.mark.parametrize("blank", [" ", "\t", "\u3000 ", "\u2003"])
def test_a_blank_user_id_is_a_missing_user(blank: str) -> None:
    doc = {"@timestamp": "2024-01-01T00:00:00Z", "user": {"id": blank}}
    with pytest.raises(Invalid) as caught:
        parse(orjson.dumps(doc))
    assert caught.value.reason == "missing_user"
    assert parse(orjson.dumps(doc | {"user": {"id": blank, "name": "bob"}})).user_id == "bob"
def test_document_share_attachment_and_identity_fields() -> None:
    """The round-2 contract (docs/sources.md): object id, share visibility, file extension (lower-case,
    no dot), the number of email.attachments and the alias a person was known by."""
    doc = {"@timestamp": "2024-01-01T00:00:00Z", "user": {"id": "u"},
           "custodes": {"activity": "share", "object": {"id": "1AbC"}, "share": {"visibility": "anyone"},
                        "identity": {"alias": "Ann@Example.org"}},
           "file": {"name": "Plan.PDF", "extension": ".PDF"},
           "email": {"attachments": [{"file": {"name": "a.pdf"}}, {"file": {"name": "b.xlsx"}}]}}
    for raw in (orjson.dumps(doc), None):
        event = validate(copy.deepcopy(doc), raw)
        assert (event.object_id, event.share_visibility, event.identity_alias) == ("1AbC", "anyone", "Ann@Example.org")
        assert (event.file_extension, event.attachment_count) == ("pdf", 2)
    event = parse(b'{"@timestamp": "2024-01-01T00:00:00Z", "user.id": "u", "custodes.activity": "mail_forward",'
                  b' "email.to.address": "x@gmail.com", "email.attachments": [], "file.extension": "csv"}')
    assert (event.kind, event.email_to, event.attachment_count, event.file_extension) == (
        "mail_forward", ("x@gmail.com",), 0, "csv")


@pytest.mark.parametrize(("path", "value", "reason"), [
    ("custodes.share.visibility", "public", "bad_value"),
    ("custodes.share.visibility", "Anyone", "bad_value"),
    ("custodes.share.visibility", 3, "bad_value"),
    ("email.attachments", {"file": {}}, "wrong_type"),
    ("email.attachments", ["a.pdf"], "wrong_type"),
    ("email.attachments", [{}] * 10_001, "oversized_field"),
    ("custodes.object.id", ["a"], "wrong_type"),
    ("file.extension", "x" * 1025, "oversized_field"),
])
def test_document_fields_rejected_with_reason(path: str, value: Any, reason: str) -> None:
    doc: dict[str, Any] = {"@timestamp": "2024-01-01T00:00:00Z", "user": {"id": "u"}}
    place(doc, path, value, 3)
    with pytest.raises(Invalid) as exc:
        validate(doc, orjson.dumps(doc))
    assert exc.value.reason == reason and path in exc.value.detail
