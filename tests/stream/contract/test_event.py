"""The contract is defined once (detectors.event.Event's annotations) and everything else is derived from
it: the field table, the msgspec models, the builder, the evidence snapshot fields."""

from __future__ import annotations

import dataclasses

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.base import SNAPSHOT_FIELDS
from detectors.event import FIELD_META, Event
from stream.contract.event import FIELD_PATHS, FIELDS, builder, models
from stream.contract.limits import DEFAULT_LIMITS, Limits

T = "2024-01-01T00:00:00Z"


def test_every_attribute_but_doc_and_raw_is_read_from_one_field() -> None:
    attrs = [f.name for f in dataclasses.fields(Event)]
    assert [f.attr for f in FIELDS] == attrs[:-2] and attrs[-2:] == ["doc", "raw"]
    assert list(FIELD_META) == attrs[:-2]
    assert len(set(FIELD_PATHS)) == len(FIELD_PATHS)


def test_the_builder_passes_every_attribute() -> None:
    for closed in (True, False):
        source = builder(closed).source
        for f in FIELDS:
            assert f.read in ("objects", "count") and closed or f"v_{f.attr}" in source, f.attr


def test_snapshot_fields_leave_people_and_lists_out() -> None:
    assert "user_id" not in SNAPSHOT_FIELDS and "identity_alias" not in SNAPSHOT_FIELDS
    assert {"id", "ts", "kind", "record_count", "content", "attachment_count"} <= set(SNAPSHOT_FIELDS)
    assert not {"record_ids", "email_to", "media", "object_id", "host_id", "user_name"} & set(SNAPSHOT_FIELDS)


def test_the_closed_model_refuses_what_it_does_not_know() -> None:
    closed, open_ = models(DEFAULT_LIMITS, True), models(DEFAULT_LIMITS, False)
    doc = {"@timestamp": T, "user": {"id": "u"}, "custodes": {"record": {"ids": ["a"], "count": 1}}}
    msgspec.convert(doc, closed)
    for other in ({**doc, "agent": {}}, {**doc, "user.id": "u"}, {**doc, "custodes": {"media": []}},
                  {**doc, "user": {"id": "u", "email": "x"}}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(other, closed)
        msgspec.convert(other, open_)  # the open model ignores them


@given(st.integers(1, 64), st.integers(1, 16))
def test_models_follow_the_limits(chars: int, items: int) -> None:
    model = models(Limits(max_string_chars=chars, max_list_items=items), True)
    ok = {"@timestamp": T, "user": {"id": "u" * chars}, "custodes": {"record": {"ids": ["x"] * items}}}
    msgspec.json.decode(orjson.dumps(ok), type=model)
    too_long = {**ok, "user": {"id": "u" * (chars + 1)}}
    too_many = {**ok, "custodes": {"record": {"ids": ["x"] * (items + 1)}}}
    for bad in (too_long, too_many):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(bad, model)
