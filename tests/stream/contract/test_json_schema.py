"""stream/contract/schemas/audit-event-1.json documents exactly what stream.contract.schema.validate accepts: the two
agree on sample documents (and generated ones), and the schema lists every field validate reads
with the same limits and enums. The known divergences (what JSON Schema cannot express) are tested
as such, so a change on either side shows up here."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stream.contract.schema
from detectors.event import ACTIVITY_KINDS, SENSITIVITIES
from stream.contract.schema import DEFAULT_LIMITS, Invalid, validate
from tests.stream.contract.test_schema import KINDS, PATHS, json_scalars, json_values, place, timestamps

jsonschema = pytest.importorskip("jsonschema")

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "stream" / "contract" / "schemas" / "audit-event-1.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
DEFS = SCHEMA["$defs"]
T = "2024-03-05T14:03:22Z"


def python_accepts(doc: Any) -> bool:
    try:
        validate(doc)
    except Invalid:
        return False
    return True


def schema_accepts(doc: Any) -> bool:
    return VALIDATOR.is_valid(doc)


GOOD: list[dict[str, Any]] = [
    {"@timestamp": T, "user": {"id": "PC4412"}},
    {"@timestamp": T, "user.id": "PC4412"},
    {"@timestamp": T, "user": {"name": "Alex Morgan"}},
    {"@timestamp": T, "user": {"id": "", "name": "Alex Morgan"}},
    {"@timestamp": T, "user": {"id": 4412}},
    {"@timestamp": "2024-03-05 14:03:22.123456+01:00", "user.id": "u"},
    {"@timestamp": "20240305T140322+0100", "user.id": "u"},
    {"@timestamp": "2024-W10-2T14:03Z", "user.id": "u"},
    {"@timestamp": T, "user.id": "u", "source": "a string where ECS has an object is ignored"},
    {"@timestamp": T, "user.id": "u", "source": {"geo": ["ignored too"]}},
    {"@timestamp": T, "user.id": "u", "custodes": {"device": "not read", "user": 5}},
    {"@timestamp": T, "user.id": "u", "custodes": None, "event": None},
    {"@timestamp": T, "user.id": "u", "custodes.record": {"ids": ["a"]}, "source.geo": {"location.lat": 1,
                                                                                       "location.lon": 2}},
    {"@timestamp": T, "user.id": "u", "custodes": {"record": {"count": 2}, "record.ids": ["a", "b"]}},
    {"@timestamp": T, "user.id": "u", "custodes": {"activity": None}},
    {"@timestamp": T, "user.id": "u", "custodes": {"activity": ""}},
    *({"@timestamp": T, "user.id": "u", "custodes.activity": kind} for kind in sorted(ACTIVITY_KINDS)),
    *({"@timestamp": T, "user.id": "u", "custodes": {"dataset": {"sensitivity": s}}} for s in SENSITIVITIES),
    {"@timestamp": T, "user.id": "u", "custodes.schema_version": 1},
    {"@timestamp": T, "user.id": "u", "custodes": {"record": {"ids": "P/1", "count": 0}}},
    {"@timestamp": T, "user.id": "u", "custodes": {"record.ids": ["P/1", 2], "record.count": 10**12}},
    {"@timestamp": T, "user.id": "u", "email.to.address": ["a@example.org", "b@example.org"]},
    {"@timestamp": T, "user.id": "u", "source": {"geo": {"location": {"lat": -90, "lon": 180.0}}}},
    {"@timestamp": T, "user.id": "u", "source.geo.location": {"lat": 51.5, "lon": -0.1}},
    {"@timestamp": T, "user.id": "u", "source": {"geo.location.lat": 0, "geo.location.lon": 0}},
    {"@timestamp": T, "user.id": "u", "source": {"geo": {"location": {"lat": None, "lon": None}}}},
    {"@timestamp": T, "user.id": "u", "message": "x" * 65536, "custodes": {"media": [{}] * 100}},
    {"@timestamp": T, "user.id": "u" * 1024, "event": {"outcome": "o" * 32}, "custodes.channel": "c" * 64},
    {"@timestamp": T, "user.id": "u", "event.id": None, "host.id": 5, "unknown": {"field": [1, 2]}},
    {"@timestamp": T, "user.id": "u", "custodes.record.ids": ["x"] * 10_000},
    {"@timestamp": T, "user.id": "u", "custodes.aggregate.min_group_size": 10},
    *({"@timestamp": T, "user.id": "u", "custodes": {"activity": "share", "share": {"visibility": v}}}
      for v in ("anyone", "external", "domain", "internal")),
    {"@timestamp": T, "user.id": "u", "custodes.object.id": "1AbC", "custodes.identity.alias": "CORP\\ann"},
    {"@timestamp": T, "user.id": "u", "file": {"extension": ".PDF"}, "email.attachments": [{}, {"file": {}}]},
    {"@timestamp": T, "user.id": "u", "email": {"attachments": None, "to.address": "x@gmail.com"}},
]

BAD: list[dict[str, Any]] = [
    {"user.id": "u"},
    {"@timestamp": None, "user.id": "u"},
    {"@timestamp": 1709647402, "user.id": "u"},
    {"@timestamp": "2024-03-05T14:03:22", "user.id": "u"},
    {"@timestamp": "2024-03-05", "user.id": "u"},
    {"@timestamp": "05/03/2024 14:03:22Z", "user.id": "u"},
    {"@timestamp": "2024-03-05T14:03:22Z" + " " * 50, "user.id": "u"},
    {"@timestamp": T},
    {"@timestamp": T, "user": {"id": ""}},
    {"@timestamp": T, "user": "PC4412"},
    {"@timestamp": T, "user.id": "u", "event": False},
    {"@timestamp": T, "user.id": "u", "custodes": []},
    {"@timestamp": T, "user.id": "u", "host": "pc1"},
    {"@timestamp": T, "user.id": "u", "custodes": {"record": "P/1"}},
    {"@timestamp": T, "user.id": "u", "email": {"to": "a@example.org"}},
    {"@timestamp": T, "user.id": "u", "source": {"geo": {"location": "51.5,0.1"}}},
    {"@timestamp": T, "user.id": "u", "custodes": {"record": {}, "record.count": -1}},
    {"@timestamp": T, "user.id": "u", "custodes.record": {"count": "2"}},
    {"@timestamp": T, "user.id": "u", "source.geo": {"location": {"lat": 1}}},
    {"@timestamp": T, "user": {"id": ["u"]}},
    {"@timestamp": T, "user": {"id": True}},
    {"@timestamp": T, "user": {"id": 1.5}},
    {"@timestamp": T, "user.id": "u" * 1025},
    {"@timestamp": T, "user.id": "u", "user.name": {"first": "A"}},
    {"@timestamp": T, "user.id": "u", "custodes.activity": "exfiltration"},
    {"@timestamp": T, "user.id": "u", "custodes.activity": 3},
    {"@timestamp": T, "user.id": "u", "custodes": {"dataset": {"sensitivity": "secret"}}},
    {"@timestamp": T, "user.id": "u", "custodes": {"dataset": {"sensitivity": ""}}},
    {"@timestamp": T, "user.id": "u", "custodes.schema_version": 2},
    {"@timestamp": T, "user.id": "u", "custodes.schema_version": "1"},
    {"@timestamp": T, "user.id": "u", "custodes.schema_version": None},
    {"@timestamp": T, "user.id": "u", "custodes": {"record": {"count": -1}}},
    {"@timestamp": T, "user.id": "u", "custodes": {"record": {"count": 10**12 + 1}}},
    {"@timestamp": T, "user.id": "u", "custodes": {"record": {"count": "3"}}},
    {"@timestamp": T, "user.id": "u", "custodes": {"record": {"ids": 7}}},
    {"@timestamp": T, "user.id": "u", "custodes": {"record": {"ids": [["nested"]]}}},
    {"@timestamp": T, "user.id": "u", "custodes": {"record": {"ids": ["x" * 1025]}}},
    {"@timestamp": T, "user.id": "u", "custodes.record.ids": ["x"] * 10_001},
    {"@timestamp": T, "user.id": "u", "custodes.aggregate.min_group_size": -5},
    {"@timestamp": T, "user.id": "u", "source": {"geo": {"location": {"lat": 91, "lon": 0}}}},
    {"@timestamp": T, "user.id": "u", "source": {"geo": {"location": {"lat": 0, "lon": -180.5}}}},
    {"@timestamp": T, "user.id": "u", "source": {"geo": {"location": {"lat": 1}}}},
    {"@timestamp": T, "user.id": "u", "source.geo.location.lon": 1},
    {"@timestamp": T, "user.id": "u", "source": {"geo": "x"}, "source.geo.location.lon": 5},
    {"@timestamp": T, "user.id": "u", "source": {"geo": {"location": {"lat": "51.5", "lon": "0"}}}},
    {"@timestamp": T, "user.id": "u", "message": "x" * 65537},
    {"@timestamp": T, "user.id": "u", "event": {"outcome": "o" * 33}},
    {"@timestamp": T, "user.id": "u", "custodes.channel": "c" * 65},
    {"@timestamp": T, "user.id": "u", "custodes": {"media": {"type": "image"}}},
    {"@timestamp": T, "user.id": "u", "custodes": {"media": ["a.jpg"]}},
    {"@timestamp": T, "user.id": "u", "custodes": {"media": [{}] * 101}},
    {"@timestamp": T, "user.id": "u", "email": {"to": {"address": 5}}},
    {"@timestamp": T, "user.id": "u", "deep": [[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]},
    {"@timestamp": T, "user.id": "u", "custodes.share.visibility": "public"},
    {"@timestamp": T, "user.id": "u", "custodes": {"share": {"visibility": "ANYONE"}}},
    {"@timestamp": T, "user.id": "u", "email": {"attachments": {"file": {"name": "a"}}}},
    {"@timestamp": T, "user.id": "u", "email.attachments": ["a.pdf"]},
    {"@timestamp": T, "user.id": "u", "custodes.object": "1AbC"},
    {"@timestamp": T, "user.id": "u", "custodes.identity.alias": ["a", "b"]},
]


@pytest.mark.parametrize("doc", GOOD, ids=lambda d: orjson.dumps(d)[:70].decode())
def test_good_documents_pass_both(doc: dict[str, Any]) -> None:
    assert python_accepts(doc)
    assert schema_accepts(doc), [e.message[:200] for e in VALIDATOR.iter_errors(doc)]


@pytest.mark.parametrize("doc", BAD, ids=lambda d: orjson.dumps(d)[:70].decode())
def test_bad_documents_fail_both(doc: dict[str, Any]) -> None:
    assert not python_accepts(doc)
    assert not schema_accepts(doc)


def test_depth_limit_agrees() -> None:
    for depth in range(1, 20):
        value: Any = 0
        for _ in range(depth - 1):
            value = [value]
        doc = {"@timestamp": T, "user.id": "u", "x": value}  # containers nest depth levels
        assert python_accepts(doc) == schema_accepts(doc) == (depth <= DEFAULT_LIMITS.max_depth), depth


@pytest.mark.parametrize(
    ("doc", "python", "schema"),
    [
        # JSON Schema cannot tell 2.0 from 2: validate wants a JSON integer literal.
        ({"@timestamp": T, "user.id": "u", "custodes.record.count": 2.0}, False, True),
        ({"@timestamp": T, "user.id": 7.0}, False, True),
        # schema_version must be the integer 1: true is rejected by both.
        ({"@timestamp": T, "user.id": "u", "custodes.schema_version": True}, False, False),
        # The pattern is syntax only: validate also checks the calendar.
        ({"@timestamp": "2024-02-30T00:00:00Z", "user.id": "u"}, False, True),
        # A field in two forms: validate reads the top-level dotted key, the schema checks both.
        ({"@timestamp": T, "user.id": "u", "user": {"id": ["ignored"]}}, True, False),
        # A dotted key beside its own object means the same field (ECS): both reject the bad value.
        ({"@timestamp": T, "user.id": "u", "custodes": {"record": {}, "record.count": -1}}, False, False),
    ],
)
def test_known_divergences(doc: dict[str, Any], python: bool, schema: bool) -> None:
    assert (python_accepts(doc), schema_accepts(doc)) == (python, schema)


def _no_divergence(value: Any) -> Any:
    """Replace what JSON Schema cannot judge like validate (see test_known_divergences)."""
    if isinstance(value, float) and value.is_integer():
        return value + 0.5
    if isinstance(value, dict):
        return {k: _no_divergence(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_divergence(v) for v in value]
    return value


def _nodes(node: dict[str, Any]) -> list[tuple[dict[str, Any], str, Any]]:
    out = []
    for key, value in node.items():
        out.append((node, key, value))
        if isinstance(value, dict):
            out.extend(_nodes(value))
    return out


@st.composite
def generated_docs(draw: st.DrawFn) -> dict[str, Any]:
    """Any values in every known field, one form per top-level object (so no field appears twice)."""
    doc: dict[str, Any] = {}
    forms: dict[str, int] = {}
    for path in draw(st.lists(st.sampled_from(PATHS), unique=True, max_size=len(PATHS))):
        value = draw(
            json_values | timestamps.map(datetime.isoformat) | st.sampled_from(KINDS) | st.sampled_from(SENSITIVITIES)
            | st.integers(-5, 10**13) | st.floats(-200, 200) | st.text(min_size=1, max_size=3)
            | st.lists(st.dictionaries(st.text(max_size=3), st.integers()), max_size=3)
        )
        if path == "custodes.schema_version" and isinstance(value, bool):
            continue
        place(doc, path, _no_divergence(value), forms.setdefault(path.split(".")[0], draw(st.integers(0, 3))))
    objects = [(parent, key) for parent, key, value in _nodes(doc) if isinstance(value, dict)]
    if objects and draw(st.booleans()):  # an object where ECS has one, replaced by something else
        parent, key = draw(st.sampled_from(objects))
        parent[key] = draw(json_scalars | st.lists(json_scalars, max_size=2))
    ts = doc.get("@timestamp")
    if isinstance(ts, str) and re.search(DEFS["timestamp"]["pattern"], ts):
        try:
            datetime.fromisoformat(ts)
        except ValueError:
            doc["@timestamp"] = "2024-02-30T00:00Z" if "@timestamp" in doc else None
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_docs())
def test_generated_documents_agree(doc: dict[str, Any]) -> None:
    if doc.get("@timestamp") == "2024-02-30T00:00Z":
        return  # a calendar error, not syntax: a known divergence
    assert python_accepts(doc) == schema_accepts(doc), [e.message[:200] for e in VALIDATOR.iter_errors(doc)]


def documented_paths(schema: dict[str, Any]) -> set[str]:
    """Leaf paths of the nested form (``properties`` followed through ``object.*`` definitions)."""
    out: set[str] = set()

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, sub in props.items():
            if "." in name:
                continue
            ref = sub.get("$ref", "")
            if ref.startswith("#/$defs/object."):
                walk(DEFS[ref.removeprefix("#/$defs/")]["properties"], prefix + name + ".")
            else:
                out.add(prefix + name)

    walk(schema["properties"], "")
    return out


def test_schema_documents_every_field_validate_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert set(stream.contract.schema.FIELD_PATHS) == set(PATHS)
    documented = documented_paths(SCHEMA)
    assert set(PATHS) <= documented
    unchecked = documented - set(PATHS)
    assert unchecked == {"event.dataset", "custodes.user.phone", "custodes.device.local_time"}
    for path in PATHS:  # every dotted form is there too
        parts = path.split(".")
        for i in range(len(parts)):
            props = SCHEMA["properties"] if i == 0 else DEFS[f"object.{'.'.join(parts[:i])}"]["properties"]
            assert ".".join(parts[i:]) in props, path


def test_schema_limits_and_enums_match_the_code() -> None:
    limits = DEFAULT_LIMITS
    assert set(DEFS["activity"]["enum"]) == set(ACTIVITY_KINDS) | {"", None}
    assert DEFS["sensitivity"]["enum"] == [*SENSITIVITIES, None]
    assert DEFS["keyword"]["anyOf"][0]["maxLength"] == limits.max_string_chars
    assert DEFS["content"]["anyOf"][0]["maxLength"] == limits.max_content_chars
    lists = DEFS["keyword_list"]["anyOf"][1]
    assert lists["maxItems"] == limits.max_list_items
    assert lists["items"]["anyOf"][0]["maxLength"] == limits.max_string_chars
    assert f"depth.{limits.max_depth + 1}" in DEFS and f"depth.{limits.max_depth + 2}" not in DEFS
    assert DEFS["schema_version"] == {"const": stream.contract.schema.SCHEMA_VERSION}
    assert SCHEMA["required"] == ["@timestamp"]


def test_examples_in_the_schema_are_valid() -> None:
    for doc in SCHEMA["examples"]:
        assert python_accepts(doc) and schema_accepts(doc)
