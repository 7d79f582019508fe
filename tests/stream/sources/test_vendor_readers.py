"""Built-in readers of vendors' audit records: m365 (unified audit log), google-workspace (Reports API
activities) and okta (System Log), on fixtures from public samples (tests/data/sources/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.contract.schema import REASONS, Invalid, parse
from stream.sources import canonical_bytes, google_workspace, m365, okta, read
from stream.sources.activities import default_table

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ROOT / "tests" / "data" / "sources"
ORG = ("testsiem.onmicrosoft.com", "example.com")


def docs(name: str, fmt: str = "auto") -> list[dict[str, Any]]:
    records = list(read(SOURCES / name, fmt=fmt, org_domains=ORG))
    bad = [(r.line, r.error) for r in records if not r.ok]
    assert not bad, bad
    return [r.doc for r in records]


def activity(doc: dict[str, Any]) -> str:
    return doc.get("custodes", {}).get("activity") or default_table().classify(doc) or "other"


def test_m365_fixture() -> None:
    got = docs("m365.jsonl")
    assert [d["event"]["action"] for d in got][:4] == ["FileAccessed", "FileUploaded", "AnonymousLinkCreated",
                                                        "Set-Mailbox"]
    assert [activity(d) for d in got] == [
        "record_access", "other", "share", "other", "export", "export", "share", "share", "mail_forward",
        "mail_forward", "logon", "logon", "message", "record_access"]
    first = got[0]
    assert first["@timestamp"] == "2020-02-07T16:44:08Z"  # CreationTime has no offset: UTC
    assert first["user"] == {"id": "asr@testsiem.onmicrosoft.com"}
    assert first["event"]["id"] == "25b08f04-48ee-4755-ce22-08d7abecf3a9"
    assert first["event"]["dataset"] == "o365.audit" and first["event"]["provider"] == "OneDrive"
    assert first["source"] == {"ip": "67.43.156.15"}
    assert first["file"] == {"name": "All.aspx", "extension": "aspx"}
    download = got[4]
    assert download["custodes"]["object"]["id"].endswith("/Documents/Custody record 2019-114.docx")
    assert "record" not in download["custodes"]  # a document, not a count of records
    assert download["file"]["extension"] == "docx"
    anonymous, guest, member = got[2], got[6], got[7]
    assert anonymous["custodes"]["share"] == {"visibility": "anyone"}
    assert guest["custodes"]["share"] == {"visibility": "external"}
    assert guest["email"]["to"]["address"] == ["j.bloggs@gmail.com"]
    assert member["custodes"]["share"] == {"visibility": "internal"}
    rule, mailbox = got[8], got[9]
    assert rule["email"]["to"]["address"] == ["mailbox.private@outlook.com"]
    assert rule["source"] == {"ip": "83.57.233.151"}  # "ip:port" as Exchange writes it
    assert mailbox["email"]["to"]["address"] == ["asr.home@protonmail.com"]  # "smtp:" prefix dropped
    assert mailbox["custodes"]["forward"] == {"keeps_copy": True}
    assert got[3]["event"]["outcome"] == "success" and "email" not in got[3]  # no forwarding parameter
    assert got[10]["event"]["outcome"] == "success" and got[11]["event"]["outcome"] == "failure"
    assert got[11]["source"] == {"ip": "2001:db8:85a3::8a2e:370:7334"}
    assert got[13]["custodes"]["record"] == {"count": 3}  # MailItemsAccessed: the items listed


def test_m365_keys_in_any_case_and_parameters_as_text() -> None:
    record = {"creationtime": "2024-05-01T10:00:00Z", "OPERATION": "Set-InboxRule", "userid": "a@x.example",
              "workload": "Exchange", "parameters": orjson.dumps([{"Name": "RedirectTo",
                                                         "Value": "b@y.example; c@y.example"}]).decode()}
    [doc] = m365.normalise(record)
    assert doc["custodes"]["activity"] == "mail_forward"
    assert doc["email"]["to"]["address"] == ["b@y.example", "c@y.example"]
    cleared = {**record, "parameters": [{"Name": "ForwardingSmtpAddress", "Value": "$null"}]}
    assert "activity" not in m365.normalise(cleared)[0]["custodes"]


def test_google_workspace_fixture_one_event_per_item() -> None:
    got = docs("google_workspace.jsonl")
    assert len(got) == 11  # 10 activities, one of them with two events
    assert [activity(d) for d in got] == ["export", "other", "record_access", "other", "share", "share",
                                          "logon", "logon", "other", "share", "share"]
    download = got[0]
    assert download["user"] == {"id": "foo@bar.com"}
    assert download["event"]["dataset"] == "google_workspace.drive"
    assert download["custodes"]["object"]["id"] == "1234"
    assert download["file"]["name"] == "document title"
    visibility, access = got[4], got[5]
    assert visibility["custodes"]["share"] == {"visibility": "anyone"}  # people_with_link
    assert access["custodes"]["share"] == {"visibility": "external"}  # gmail.com is not the org's
    assert access["email"]["to"]["address"] == ["someone@gmail.com"]
    assert visibility["file"]["extension"] == "xlsx"
    assert visibility["event"]["id"] != access["event"]["id"]
    assert got[6]["event"]["outcome"] == "success" and got[7]["event"]["outcome"] == "failure"
    assert got[7]["source"] == {"ip": "203.0.113.99"}
    assert len({d["event"]["id"] for d in got}) == len(got)  # the same qualifier, still distinct ids
    # Elastic's samples: new_value "owner" is no visibility, but the visibility parameter and
    # target_domain "all" are; a user at a domain of the organisation is an internal share
    assert got[9]["custodes"]["share"] == {"visibility": "anyone"}
    assert got[10]["custodes"]["share"] == {"visibility": "internal"}
    assert got[10]["email"]["to"]["address"] == ["user@example.com"]
    [outside] = google_workspace.normalise(orjson.loads((SOURCES / "google_workspace.jsonl").read_bytes()
                                                        .splitlines()[-1]), ())
    assert outside["custodes"]["share"] == {"visibility": "external"}  # example.com is not elastic.com


def test_okta_fixture() -> None:
    got = docs("okta.jsonl")
    assert [activity(d) for d in got] == ["logoff", "logon", "other"]
    login = got[1]
    assert login["user"] == {"id": "xxxxxx@elastic.co", "name": "xxxxxx"}
    assert login["event"] == {"action": "user.session.start", "dataset": "okta.system", "module": "okta",
                              "id": "3aeede38-4f67-11ea-abd3-1f5d113f2546", "outcome": "success"}
    assert login["source"]["ip"] == "175.16.199.1"
    assert login["source"]["geo"]["location"] == {"lat": 37.7201, "lon": -121.919}
    assert got[2]["okta"]["target"][0] == {"type": "PolicyEntity", "alternateid": "unknown",
                                          "displayname": "Default Policy"}


@pytest.mark.parametrize(("name", "fmt"), [("m365.jsonl", "m365"), ("google_workspace.jsonl", "google-workspace"),
                                           ("okta.jsonl", "okta")])
def test_round_trip(name: str, fmt: str) -> None:
    """Auto-detection agrees with the named format; each event encodes and validates to the same Event;
    reading again gives the same documents (deterministic ids)."""
    auto, named = docs(name), docs(name, fmt)
    assert auto == named == docs(name)
    for doc in named:
        event = parse(canonical_bytes(doc))
        assert orjson.loads(canonical_bytes(doc)) == doc
        assert event.user_id == doc["user"]["id"] and event.id == doc["event"]["id"]
        assert event.action == doc["event"]["action"]


def test_a_bad_record_is_refused_with_its_field_path_and_reading_goes_on(tmp_path: Path) -> None:
    good = (SOURCES / "m365.jsonl").read_bytes().splitlines()[0]
    path = tmp_path / "m365.jsonl"
    path.write_bytes(b"\n".join([
        good,
        b'{"CreationTime": "2024-01-01T00:00:00", "Operation": "New-InboxRule", "UserId": "a@b.example",'
        b' "Workload": "Exchange", "Parameters": [{"Name": 7, "Value": "x"}]}',
        b'{"CreationTime": "yesterday", "Operation": "FileDownloaded", "UserId": "a@b.example", "Workload": "x"}',
        b'{"CreationTime": "2024-01-01T00:00:00", "Operation": "FileDownloaded", "Workload": "SharePoint"}',
        b'[1, 2]', good]) + b"\n")
    records = list(read(path, fmt="m365"))
    assert [(r.line, r.error.reason if r.error else None, r.error.field if r.error else None) for r in records] == [
        (1, None, None), (2, "wrong_type", "Parameters[0].Name"), (3, "bad_timestamp", "CreationTime"),
        (4, "missing_user", "UserId"), (5, "not_an_object", None), (6, None, None)]


def test_google_workspace_errors_name_the_event() -> None:
    base = {"kind": "admin#reports#activity", "id": {"time": "2024-01-01T00:00:00Z", "applicationName": "drive"},
            "actor": {"email": "a@b.example"}}
    with pytest.raises(Invalid) as exc:
        google_workspace.normalise({**base, "events": [{"name": "view"}, {"parameters": []}]})
    assert (exc.value.reason, exc.value.field) == ("bad_value", "events[1].name")
    with pytest.raises(Invalid) as exc:
        google_workspace.normalise({**base, "events": [{"name": "view", "parameters": [{"name": 1}]}]})
    assert exc.value.field == "events[0].parameters[0].name"
    with pytest.raises(Invalid) as exc:
        google_workspace.normalise({**base, "events": []})
    assert exc.value.field == "events"
    with pytest.raises(Invalid) as exc:
        google_workspace.normalise({**base, "actor": {}, "events": [{"name": "view"}]})
    assert exc.value.reason == "missing_user"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20)


def _records(keys: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Records with the vendor's keys, each holding either a plausible value or anything at all."""
    return st.fixed_dictionaries({}, optional={k: st.one_of(v, json_values) for k, v in keys.items()})


M365_KEYS = {"CreationTime": st.just("2024-01-01T10:00:00"), "Operation": st.sampled_from(
    ["FileDownloaded", "SharingInvitationCreated", "New-InboxRule", "Set-Mailbox", "MailItemsAccessed",
     "UserLoggedIn"]),
    "UserId": st.just("a@b.example"), "Workload": st.just("SharePoint"), "ClientIP": st.just("1.2.3.4:80"),
    "Parameters": st.lists(st.fixed_dictionaries({"Name": st.sampled_from(["ForwardTo", "RedirectTo", "x"]),
                                                  "Value": json_values}), max_size=3),
    "TargetUserOrGroupName": st.just("x@y.example"), "Folders": json_values, "ObjectId": json_values,
    "SourceFileName": json_values, "Id": json_values, "ResultStatus": json_values}
GWS_KEYS = {"id": st.fixed_dictionaries({"time": st.just("2024-01-01T10:00:00Z"), "applicationName": st.sampled_from(
    ["drive", "login"])}), "actor": st.fixed_dictionaries({"email": st.just("a@b.example")}),
    "events": st.lists(st.fixed_dictionaries({"name": st.sampled_from(
        ["download", "change_user_access", "change_document_visibility", "login_failure"])},
        optional={"parameters": st.lists(st.fixed_dictionaries(
            {"name": st.sampled_from(["doc_id", "target_user", "new_value", "doc_title"])},
            optional={"value": json_values, "multiValue": json_values}), max_size=3)}), max_size=3),
    "ipAddress": json_values, "ownerDomain": json_values}
OKTA_KEYS = {"published": st.just("2024-01-01T10:00:00Z"), "eventType": st.just("user.session.start"),
             "actor": st.fixed_dictionaries({"alternateId": st.just("a@b.example")}), "uuid": json_values,
             "client": st.fixed_dictionaries({}, optional={"ipAddress": json_values,
                                                           "geographicalContext": json_values}),
             "outcome": json_values, "target": json_values}


@pytest.mark.parametrize(("reader", "keys"), [(m365, M365_KEYS), (google_workspace, GWS_KEYS), (okta, OKTA_KEYS)])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_records_are_refused_with_a_reason_never_a_crash(reader: Any, keys: dict,
                                                                   data: st.DataObject) -> None:
    record = data.draw(st.one_of(_records(keys), json_values))
    try:
        out = reader.normalise(record, ORG)
    except Invalid as exc:
        assert exc.reason in REASONS
        return
    for doc in out:  # accepted: a valid canonical event the worker accepts too
        parse(canonical_bytes(doc))


def test_api_responses_saved_as_they_came(tmp_path: Path) -> None:
    """A Management Activity API content blob (a JSON array), a Reports API page (``items``, pretty-printed)
    and an Okta array: read whole, each record numbered by its position."""
    m365_lines = [orjson.loads(line) for line in (SOURCES / "m365.jsonl").read_bytes().splitlines()]
    blob = tmp_path / "content.json"
    blob.write_bytes(orjson.dumps(m365_lines[:3] + [{"Operation": "FileDownloaded"}]))
    records = list(read(blob))
    assert [(r.line, r.ok) for r in records] == [(1, True), (2, True), (3, True), (4, False)]
    assert records[3].error.reason == "missing_timestamp" and records[3].error.field == "CreationTime"

    gws_lines = [orjson.loads(line) for line in (SOURCES / "google_workspace.jsonl").read_bytes().splitlines()]
    page = tmp_path / "activities.json"
    page.write_bytes(orjson.dumps({"kind": "admin#reports#activities", "items": gws_lines[4:6]},
                                  option=orjson.OPT_INDENT_2))
    records = list(read(page, fmt="google-workspace"))
    assert [r.line for r in records] == [1, 1, 2]  # the first activity holds two events
    assert all(r.ok for r in records)
    one_line_page = tmp_path / "page.json"
    one_line_page.write_bytes(orjson.dumps({"items": gws_lines[:2]}))
    assert [r.doc["event"]["action"] for r in read(one_line_page)] == ["download", "edit"]

    okta_lines = [orjson.loads(line) for line in (SOURCES / "okta.jsonl").read_bytes().splitlines()]
    pretty = tmp_path / "okta.json"
    pretty.write_bytes(orjson.dumps(okta_lines, option=orjson.OPT_INDENT_2))
    assert len([r for r in read(pretty) if r.ok]) == 3


def test_json_lines_with_a_broken_first_line_are_still_json_lines(tmp_path: Path) -> None:
    good = (SOURCES / "okta.jsonl").read_bytes().splitlines()
    path = tmp_path / "okta.jsonl"
    path.write_bytes(b'{"eventType": "user.session.start", "publi\n' + b"\n".join(good) + b"\n")
    records = list(read(path, fmt="okta"))
    assert [(r.line, r.error.reason if r.error else None) for r in records] == [
        (1, "invalid_json"), (2, None), (3, None), (4, None)]


def test_sentinel_office_activity_rows(tmp_path: Path) -> None:
    """Microsoft Sentinel's OfficeActivity table names some fields differently; Parameters is text there."""
    row = {"TimeGenerated": "2024-05-01T10:00:00.123Z", "Operation": "Set-Mailbox", "OfficeWorkload": "Exchange",
           "UserId": "a@x.example", "OfficeObjectId": "a", "OfficeId": "3f0c-1", "Client_IPAddress": "10.1.2.3",
           "ResultStatus": "True", "RecordType": "ExchangeAdmin",
           "Parameters": '[{"Name":"Identity","Value":"a"},'
                         '{"Name":"ForwardingSmtpAddress","Value":"smtp:a@b.example"}]'}
    path = tmp_path / "officeactivity.json"
    path.write_bytes(orjson.dumps(row) + b"\n")
    [record] = list(read(path))
    doc = record.doc
    assert doc["@timestamp"] == "2024-05-01T10:00:00.123000Z"
    assert doc["event"]["id"] == "3f0c-1" and doc["event"]["provider"] == "Exchange"
    assert doc["source"] == {"ip": "10.1.2.3"} and doc["custodes"]["object"]["id"] == "a"
    assert doc["custodes"]["activity"] == "mail_forward" and doc["email"]["to"]["address"] == ["a@b.example"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["m365", "google-workspace", "okta", "auto"]),
       lines=st.lists(st.one_of(st.binary(max_size=60),
                                (json_values | _records(M365_KEYS) | _records(GWS_KEYS) | _records(OKTA_KEYS))
                                .map(lambda v: json.dumps(v).encode())), max_size=6))
def test_reading_any_bytes_never_crashes(tmp_path: Path, fmt: str, lines: list[bytes]) -> None:
    path = tmp_path / "input.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")
    try:
        records = list(read(path, fmt=fmt))
    except Exception as exc:  # a whole-file problem is a usage error, never anything else
        from stream.sources import FormatError
        assert isinstance(exc, FormatError), exc
        return
    for record in records:
        assert record.ok or record.error.reason in REASONS
