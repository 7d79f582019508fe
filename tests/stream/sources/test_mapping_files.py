"""Mapping files: any CSV / JSON-lines log -> canonical events, without code (stream.sources.mapping)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.contract.schema import REASONS, Invalid, validate
from stream.sources import MappingError, load_mapping, read
from stream.sources.mapping import from_dict

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"
EXAMPLE = ROOT / "config" / "mappings" / "example-records-system.toml"

BASE: dict[str, Any] = {
    "format": "jsonl",
    "fields": {"who": "user.id", "what": "event.action"},
    "timestamp": {"column": "when"},
}


def test_every_shipped_mapping_loads() -> None:
    files = sorted((ROOT / "config" / "mappings").glob("*.toml"))
    assert EXAMPLE in files
    for path in files:
        assert load_mapping(path).fields


def test_example_mapping_on_its_sample() -> None:
    records = list(read(DATA / "records_system.csv", mapping=EXAMPLE))
    assert [r.line for r in records] == [2, 3, 4, 5, 6, 7]
    first = records[0].doc
    assert first == {
        "@timestamp": "2024-03-05T09:14:02Z",  # GMT in March
        "user": {"id": "PC4412", "name": "Alex Morgan"},
        "host": {"id": "WS-0231"},
        "event": {"action": "VIEW", "outcome": "success", "id": "A-1001", "dataset": "records.audit"},
        "custodes": {
            "record": {"ids": ["P/123", "P/456"], "count": 2},
            "case": {"ref": "CR-2024-0112"},
            "activity": "record_access",
            "dataset": {"name": "person-records", "sensitivity": "high"},
            "schema_version": 1,
        },
    }
    assert records[1].doc is not None and records[1].doc["@timestamp"] == "2024-07-01T09:00:00Z"  # BST
    assert records[2].doc is not None and records[2].doc["event"]["id"].startswith("sha-")  # no Audit Id
    errors = [(r.line, r.error.reason, r.error.detail) for r in records if r.error]
    assert errors == [
        (5, "bad_timestamp", "Timestamp does not match '%d/%m/%Y %H:%M:%S'"),
        (6, "missing_user", "user.id (or user.name) is required"),
        (7, "bad_value", "Record Count is not an integer"),
    ]
    assert records[3].raw.startswith(b"A-1004,31/02/2024")
    event = validate(first)
    expected = ("record_access", 2, "high", "CR-2024-0112")
    assert (event.kind, event.records, event.sensitivity, event.case_ref) == expected


def test_jsonl_with_timezone_nested_columns_and_constants(tmp_path: Path) -> None:
    mapping = from_dict({
        "format": "jsonl",
        "fields": {"actor.login": "user.id", "op": "event.action", "n": "custodes.record.count"},
        "constants": {"custodes.activity": "export", "custodes.dataset": {"name": "crm", "sensitivity": "medium"},
                      "labels.tags": ["a", "b"]},
        "timestamp": {"column": "time", "timezone": "America/New_York"},
    })
    log = tmp_path / "crm.log"
    log.write_text(
        '{"actor": {"login": "jdoe"}, "op": "export", "n": 250, "time": "2024-01-15T09:30:00"}\n'
        '{"actor": {"login": "jdoe"}, "op": "export", "n": 3, "time": "2024-07-15T09:30:00"}\n'
        '{"actor": {"login": "jdoe"}, "op": "export", "time": "2024-07-15T09:30:00+00:00"}\n'
    )
    docs = [r.doc for r in read(log, mapping=mapping)]
    assert [d["@timestamp"] for d in docs] == ["2024-01-15T14:30:00Z", "2024-07-15T13:30:00Z", "2024-07-15T09:30:00Z"]
    assert docs[0]["user"] == {"id": "jdoe"} and docs[0]["custodes"]["record"] == {"count": 250}
    assert docs[0]["custodes"]["dataset"] == {"name": "crm", "sensitivity": "medium"}
    docs[0]["labels"]["tags"].append("changed")
    assert docs[1]["labels"]["tags"] == ["a", "b"]  # constants are copied, not shared
    assert validate(docs[0]).kind == "export"


def test_ambiguous_and_missing_local_times() -> None:
    mapping = from_dict({**BASE, "timestamp": {"column": "when", "format": "%Y-%m-%d %H:%M",
                                               "timezone": "Europe/London"}})
    twice = mapping.normalise({"who": "u", "when": "2024-10-27 01:30"})  # clocks go back: first occurrence (BST)
    assert twice["@timestamp"] == "2024-10-27T00:30:00Z"
    never = mapping.normalise({"who": "u", "when": "2024-03-31 01:30"})  # clocks go forward: read as GMT
    assert never["@timestamp"] == "2024-03-31T01:30:00Z"


@pytest.mark.parametrize(
    ("timestamp", "value", "expected"),
    [
        ({"column": "when", "format": "epoch"}, "1709647402", "2024-03-05T14:03:22Z"),
        ({"column": "when", "format": "epoch"}, 1709647402.5, "2024-03-05T14:03:22.500000Z"),
        ({"column": "when", "format": "epoch_ms"}, 1709647402000, "2024-03-05T14:03:22Z"),
        ({"column": "when", "format": "%d.%m.%Y %H:%M %z"}, "05.03.2024 15:03 +0100", "2024-03-05T14:03:00Z"),
        ({"column": "when"}, "2024-03-05T15:03:22+01:00", "2024-03-05T14:03:22Z"),
        ({"column": "when", "timezone": "UTC"}, "2024-03-05 14:03:22", "2024-03-05T14:03:22Z"),
    ],
)
def test_timestamp_formats(timestamp: dict[str, str], value: Any, expected: str) -> None:
    mapping = from_dict({**BASE, "timestamp": timestamp})
    assert mapping.normalise({"who": "u", "when": value})["@timestamp"] == expected


@pytest.mark.parametrize(
    ("timestamp", "value", "reason"),
    [
        ({"column": "when"}, "2024-03-05 14:03:22", "timestamp_without_timezone"),
        ({"column": "when"}, "", "missing_timestamp"),
        ({"column": "when"}, None, "missing_timestamp"),
        ({"column": "when"}, 1709647402, "wrong_type"),
        ({"column": "when", "format": "epoch"}, "soon", "wrong_type"),
        ({"column": "when", "format": "epoch"}, 1e30, "bad_timestamp"),
        ({"column": "when", "format": "%Y", "timezone": "UTC"}, "20x4", "bad_timestamp"),
        ({"column": "when", "timezone": "UTC"}, "x" * 65, "oversized_field"),
    ],
)
def test_timestamp_errors(timestamp: dict[str, str], value: Any, reason: str) -> None:
    mapping = from_dict({**BASE, "timestamp": timestamp})
    with pytest.raises(Invalid) as exc:
        mapping.normalise({"who": "u", "when": value})
    assert exc.value.reason == reason
    assert "when" in exc.value.detail


def test_timestamp_mapped_as_a_field() -> None:
    mapping = from_dict({"format": "jsonl", "fields": {"ts": "@timestamp", "who": "user.id"}})
    assert mapping.normalise({"ts": "2024-03-05T14:03:22Z", "who": "u"})["@timestamp"] == "2024-03-05T14:03:22Z"


def test_casts() -> None:
    mapping = from_dict({
        "format": "csv",
        "fields": {"who": "user.id", "n": "custodes.record.count", "ids": "custodes.record.ids",
                   "to": "email.to.address", "lat": "source.geo.location.lat", "lon": "source.geo.location.lon",
                   "num": "event.id"},
        "timestamp": {"column": "when"},
        "types": {"custodes.record.count": "int", "custodes.record.ids": "list",
                  "email.to.address": {"type": "list", "separator": ","}, "source.geo.location.lat": "float",
                  "source.geo.location.lon": "float", "event.id": "str"},
    })
    doc = mapping.normalise({"who": "u", "when": "2024-03-05T14:03:22Z", "n": " 12 ", "ids": "a; b;;c",
                             "to": "x@example.org, y@example.org", "lat": "51.5", "lon": "-1e-1", "num": 77})
    assert doc["custodes"]["record"] == {"count": 12, "ids": ["a", "b", "c"]}
    assert doc["email"]["to"]["address"] == ["x@example.org", "y@example.org"]
    assert doc["source"]["geo"]["location"] == {"lat": 51.5, "lon": -0.1}
    assert doc["event"]["id"] == "77"
    for change, reason in [({"n": "12.5"}, "bad_value"), ({"n": "1_000"}, "bad_value"), ({"n": "9" * 50}, "bad_value"),
                           ({"n": True}, "wrong_type"), ({"n": 3.5}, "bad_value"), ({"lat": "nan"}, "bad_value"),
                           ({"lat": "1e999"}, "bad_value"), ({"ids": 5}, "wrong_type"), ({"num": [1]}, "wrong_type"),
                           ({"lat": "95"}, "bad_value")]:
        with pytest.raises(Invalid) as exc:
            mapping.normalise({"who": "u", "when": "2024-03-05T14:03:22Z", **change})
        assert exc.value.reason == reason, change
    integral = mapping.normalise({"who": "u", "when": "2024-03-05T14:03:22Z", "n": 4.0})
    assert integral["custodes"]["record"] == {"count": 4}


def test_unknown_keys_are_errors(tmp_path: Path) -> None:
    cases = [
        ('format = "csv"\nfeilds = {}\n', "unknown key 'feilds' at the top level"),
        ('format = "csv"\n[csv]\ndelimter = ";"\n', "unknown key 'delimter' in [csv] (known: delimiter, quotechar)"),
        ('format = "csv"\n[timestamp]\ncolumn = "t"\ntz = "UTC"\n', "unknown key 'tz' in [timestamp]"),
        ('format = "csv"\n[fields]\nn = "custodes.record.count"\n[timestamp]\ncolumn = "t"\ntimezone = "UTC"\n'
         '[types]\n"custodes.record.count" = { type = "int", sep = ";" }\n', "unknown key 'sep' in [types]"),
    ]
    for text, message in cases:
        path = tmp_path / "m.toml"
        path.write_text(text)
        with pytest.raises(MappingError) as exc:
            load_mapping(path)
        assert str(path) in str(exc.value) and message in str(exc.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "xml"}, "format must be one of 'csv', 'jsonl'"),
        ({"timestamp": {}}, "no timestamp"),
        ({"timestamp": {"column": "when", "timezone": "Europe/Londn"}}, "not an IANA time zone"),
        ({"timestamp": {"column": "when", "format": "%d/%m/%Y"}}, "has no %z"),
        ({"timestamp": {"column": 3}}, "timestamp.column"),
        ({"fields": {"who": "user id"}}, "dotted path"),
        ({"fields": {"who": "user.id", "name": "user"}}, "conflict"),
        ({"fields": {"who": "user.id", "also": "user.id"}}, "set twice"),
        ({"constants": {"user.id": "x"}}, "set twice"),
        ({"constants": {"@timestamp": "x"}}, "cannot be a constant"),
        ({"fields": {"ts": "@timestamp"}}, "from [timestamp] and from [fields]"),
        ({"types": {"custodes.record.count": "int"}}, "not a target of [fields]"),
        ({"types": {"user.id": "decimal"}}, "must be one of"),
        ({"csv": {"delimiter": ";"}}, "format = \"csv\" only"),
        ({"fields": "who"}, "[fields] must be a table"),
    ],
)
def test_bad_mappings(change: dict[str, Any], message: str) -> None:
    with pytest.raises(MappingError) as exc:
        from_dict({**BASE, **change}, "m.toml")
    assert message in str(exc.value)
    assert str(exc.value).startswith("m.toml: ")


def test_csv_options_and_missing_columns(tmp_path: Path) -> None:
    mapping = from_dict({"format": "csv", "csv": {"delimiter": ";", "quotechar": "'"},
                         "fields": {"who": "user.id"}, "timestamp": {"column": "when"}})
    log = tmp_path / "log.txt"
    log.write_text("when;who\n2024-03-05T14:03:22Z;'a;b'\n")
    [record] = read(log, mapping=mapping)
    assert record.doc is not None and record.doc["user"] == {"id": "a;b"}
    log.write_text("time;who\n2024-03-05T14:03:22Z;a\n")
    with pytest.raises(MappingError, match="no column 'when'"):
        read(log, mapping=mapping)
    with pytest.raises(MappingError, match="not valid TOML"):
        load_mapping(log)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["who", "n", "ids", "when", "x"]) | st.text(max_size=5),
                       st.text(max_size=20) | st.datetimes().map(str), max_size=6))
def test_never_raises_anything_but_invalid(row: dict[str, str]) -> None:
    mapping = from_dict({"format": "csv", "fields": {"who": "user.id", "n": "custodes.record.count",
                                                     "ids": "custodes.record.ids"},
                         "timestamp": {"column": "when", "timezone": "Europe/London"},
                         "types": {"custodes.record.count": "int", "custodes.record.ids": "list"}})
    try:
        validate(mapping.normalise(row))
    except Invalid as exc:
        assert exc.reason in REASONS


# -- mappings that describe real logs: case, paths, value maps, event kinds -----------------------------

M365_MAPPING = ROOT / "config" / "mappings" / "m365-unified-audit.toml"
REAL: dict[str, Any] = {
    "format": "jsonl",
    "ignore_case": True,
    "fields": {"UserId": "user.id", "Operation": "event.action", "ResultStatus": "event.outcome",
               "target[*].alternateId": "related.user", "target[0].type": "okta.first_target"},
    "values": {"event.outcome": {"Succeeded": "success", "Failed": "failure", "*": "unknown"}},
    "timestamp": {"column": "CreationTime", "timezone": "UTC"},
    "when": [
        {"if": {"Operation": ["FileDownloaded", "FileSyncDownloadedFull"]},
         "set": {"custodes.activity": "export"}, "fields": {"ObjectId": "custodes.object.id"}},
        {"if": {"Operation": "New-InboxRule", "Parameters[Name=ForwardTo].Value": "*"},
         "set": {"custodes.activity": "mail_forward"},
         "fields": {"Parameters[Name=ForwardTo].Value": "email.to.address"}},
    ],
}


def test_event_kinds_value_maps_paths_and_case() -> None:
    m = from_dict(REAL)
    download = m.normalise({"creationtime": "2024-05-01T10:00:00", "USERID": "a@x.example",
                            "operation": "filedownloaded", "ObjectId": "https://x/doc.docx",
                            "ResultStatus": "Succeeded"})
    assert download["custodes"]["activity"] == "export"
    assert download["custodes"]["object"] == {"id": "https://x/doc.docx"}
    assert download["event"]["outcome"] == "success"
    assert download["@timestamp"] == "2024-05-01T10:00:00Z"
    rule = m.normalise({"CreationTime": "2024-05-01T10:01:00", "UserId": "a@x.example", "Operation": "New-InboxRule",
                        "ResultStatus": "PartiallySucceeded",
                        "Parameters": [{"Name": "Name", "Value": "fw"}, {"name": "forwardto", "value": "b@y.example"}],
                        "target": [{"alternateId": "t1", "type": "User"}, {"alternateId": "t2"}]})
    assert rule["custodes"]["activity"] == "mail_forward"
    assert rule["email"]["to"]["address"] == "b@y.example"
    assert rule["event"]["outcome"] == "unknown"  # "*" in the value map
    assert rule["related"]["user"] == ["t1", "t2"] and rule["okta"]["first_target"] == "User"
    plain = m.normalise({"CreationTime": "2024-05-01T10:02:00", "UserId": "a@x.example", "Operation": "New-InboxRule",
                         "Parameters": [{"Name": "MoveToFolder", "Value": "Archive"}]})
    assert "activity" not in plain.get("custodes", {})  # no [[when]] held: base fields only


def test_case_sensitive_unless_asked() -> None:
    m = from_dict({**BASE, "fields": {"Who": "user.id"}})
    with pytest.raises(Invalid) as exc:
        m.normalise({"when": "2024-01-01T00:00:00Z", "who": "a"})
    assert exc.value.reason == "missing_user"
    m = from_dict({**BASE, "fields": {"Who": "user.id"}, "ignore_case": True})
    assert m.normalise({"WHEN": "2024-01-01T00:00:00Z", "who": "a"})["user"]["id"] == "a"


def test_when_errors_are_load_errors() -> None:
    with pytest.raises(MappingError, match="when 1: if"):
        from_dict({**BASE, "when": [{"set": {"custodes.activity": "export"}}]})
    with pytest.raises(MappingError, match="non-empty list"):
        from_dict({**BASE, "when": [{"if": {"Operation": []}}]})
    with pytest.raises(MappingError, match="unknown key 'then'"):
        from_dict({**BASE, "when": [{"if": {"a": 1}, "then": {}}]})
    with pytest.raises(MappingError, match="set twice"):
        from_dict({**BASE, "when": [{"if": {"a": 1}, "set": {"x.y": 1}, "fields": {"b": "x.y"}}]})
    with pytest.raises(MappingError, match="ignore_case"):
        from_dict({**BASE, "ignore_case": "yes"})


def test_a_cast_failure_names_the_source_column() -> None:
    m = from_dict({**BASE, "fields": {**BASE["fields"], "n": "custodes.record.count"},
                   "types": {"custodes.record.count": "int"}})
    with pytest.raises(Invalid) as exc:
        m.normalise({"when": "2024-01-01T00:00:00Z", "who": "a", "n": "many"})
    assert (exc.value.reason, exc.value.field) == ("bad_value", "n")


def test_shipped_m365_mapping_reads_the_m365_fixture() -> None:
    records = list(read(DATA / "sources" / "m365.jsonl", mapping=M365_MAPPING))
    assert all(r.ok for r in records), [(r.line, r.error) for r in records if not r.ok]
    kinds = [r.doc.get("custodes", {}).get("activity") for r in records]
    assert kinds == [None, None, "share", None, "export", "export", "share", None, "mail_forward",
                     "mail_forward", "logon", "logon", None, None]
    assert records[8].doc["email"]["to"]["address"] == "mailbox.private@outlook.com"
    assert records[6].doc["custodes"]["share"] == {"visibility": "external"}


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                    max_leaves=15))
def test_real_mapping_never_crashes(record: Any) -> None:
    m = from_dict(REAL)
    try:
        validate(m.normalise(record))
    except Invalid as exc:
        assert exc.reason in REASONS
