"""Managed-device notification records -> canonical events (stream.sources.device)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.contract.schema import REASONS, Invalid, validate
from stream.sources import device, read

DATA = Path(__file__).resolve().parents[2] / "data"

ROW = {
    "Uid": "PC4412",
    "Phone Number": "+447700900123",
    "Owner Name": "Alex Morgan",
    "Device ID (IMEI)": "356938035643809",
    "Notification Type": "Message Sent",
    "Policy Set": "Police Officers",
    "Application": "com.whatsapp",
    "Location": "51.5072,-0.1276",
    "Content": "Can you run this plate for me? AB12 CDE",
    "Media": "IMG_2041.jpg;note.pdf",
    "Notification Date/Time Local": "05/03/2024 14:03:22",
    "Notification Date/Time": "2024-03-05 14:03:22",
}


def test_a_full_record() -> None:
    doc = device.normalise(ROW)
    event_id = doc["event"].pop("id")
    assert event_id.startswith("sha-") and len(event_id) == 28
    assert doc == {
        "@timestamp": "2024-03-05T14:03:22Z",
        "event": {"dataset": "device.notification", "action": "Message Sent"},
        "user": {"id": "PC4412", "name": "Alex Morgan"},
        "host": {"id": "356938035643809"},
        "source": {"geo": {"location": {"lat": 51.5072, "lon": -0.1276}}},
        "message": "Can you run this plate for me? AB12 CDE",
        "custodes": {
            "schema_version": 1,
            "activity": "message",
            "policy_set": "Police Officers",
            "application": {"id": "com.whatsapp"},
            "user": {"phone": "+447700900123"},
            "device": {"local_time": "05/03/2024 14:03:22"},
            "media": [{"type": "image", "name": "IMG_2041.jpg"}, {"type": "file", "name": "note.pdf"}],
        },
    }
    event = validate(device.normalise(ROW))
    assert (event.user_id, event.kind, event.app_id, event.policy_set, event.host_id) == (
        "PC4412", "message", "com.whatsapp", "Police Officers", "356938035643809")
    assert (event.lat, event.lon, event.id) == (51.5072, -0.1276, event_id)


def test_ids_are_deterministic_and_given_ids_win() -> None:
    first, again = device.normalise(ROW), device.normalise(dict(ROW))
    assert first["event"]["id"] == again["event"]["id"]
    other = device.normalise({**ROW, "Content": "something else"})
    assert other["event"]["id"] != first["event"]["id"]
    assert device.normalise({**ROW, "Notification ID": "N-77"})["event"]["id"] == "N-77"


def test_column_names_are_matched_loosely() -> None:
    loose = {"uid": "PC4412", "notification_type": "Log On", "IMEI": 356938035643809,
             "notification date/time (UTC)": "2024-03-05T08:00:00Z", "Unrelated": "ignored"}
    doc = device.normalise(loose)
    assert doc["host"] == {"id": "356938035643809"}
    assert doc["custodes"]["activity"] == "logon"
    assert "Unrelated" not in str(doc)


@pytest.mark.parametrize(
    ("kind", "content", "activity"),
    [
        ("Message Sent", "", "message"),
        ("Message Received", "hi", "message"),
        ("SMS", "", "message"),
        ("WhatsApp Message", "", "message"),
        ("Chat", "", "message"),
        ("Email Sent", "", "message"),
        ("Notification", "hi", "message"),
        ("Log On", "", "logon"),
        ("Logon", "", "logon"),
        ("User Login", "", "logon"),
        ("Signed In", "", "logon"),
        ("Device Unlocked", "", "logon"),
        ("Log Off", "", "logoff"),
        ("LOGOUT", "", "logoff"),
        ("Sign out", "", "logoff"),
        ("Device Locked", "", "logoff"),
        ("Typed Activity", "meet at 6", "message"),
        ("Typed Activity", "", "other"),
        ("Keyword Match", "firearm", "message"),
        ("Keystrokes", "", "other"),
        ("Group Joined", "", "membership"),
        ("Added to group", "", "membership"),
        ("File Shared", "", "share"),
        ("Document Printed", "", "print"),
        ("USB Storage Connected", "", "removable_media"),
        ("File Uploaded", "", "web_upload"),
        ("Screenshot", "", "other"),
        ("Phone Call", "", "other"),
        ("", "", "other"),
    ],
)
def test_activity_table(kind: str, content: str, activity: str) -> None:
    assert device.activity(kind, bool(content)) == activity
    doc = device.normalise({**ROW, "Notification Type": kind, "Content": content})
    assert doc["custodes"]["activity"] == activity


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-05 14:03:22", "2024-03-05T14:03:22Z"),  # no timezone: the server's UTC clock
        ("2024-03-05T14:03:22.250Z", "2024-03-05T14:03:22.250000Z"),
        ("2024-07-01T10:00:00+01:00", "2024-07-01T09:00:00Z"),
        ("05/03/2024 14:03:22", "2024-03-05T14:03:22Z"),  # day first (UK)
        ("05/03/2024 14:03", "2024-03-05T14:03:00Z"),
        (1709647402, "2024-03-05T14:03:22Z"),
        (1709647402000, "2024-03-05T14:03:22Z"),
    ],
)
def test_server_time(value: Any, expected: str) -> None:
    assert device.normalise({**ROW, "Notification Date/Time": value})["@timestamp"] == expected


def test_local_time_is_kept_as_given() -> None:
    doc = device.normalise({**ROW, "Notification Date/Time Local": " 5/3/24 2:03pm "})
    assert doc["custodes"]["device"]["local_time"] == "5/3/24 2:03pm"
    assert doc["@timestamp"] == "2024-03-05T14:03:22Z"


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        ({"Notification Date/Time": ""}, "missing_timestamp", "Notification Date/Time"),
        ({"Notification Date/Time": "yesterday"}, "bad_timestamp", "Notification Date/Time"),
        ({"Notification Date/Time": "31/02/2024 10:00"}, "bad_timestamp", "Notification Date/Time"),
        ({"Notification Date/Time": True}, "wrong_type", "Notification Date/Time"),
        ({"Notification Date/Time": 10**20}, "bad_timestamp", "out of range"),
        ({"Uid": "", "Owner Name": ""}, "missing_user", "user.id"),
        ({"Uid": ["PC4412"]}, "wrong_type", "Uid"),
        ({"Location": "51.5"}, "bad_value", "Location"),
        ({"Location": "95,0"}, "bad_value", "latitude"),
        ({"Location": "51.5,-181"}, "bad_value", "longitude"),
        ({"Location": "north,west"}, "wrong_type", "latitude"),
        ({"Location": {"lat": 51.5}}, "bad_value", "both"),
        ({"Location": True}, "wrong_type", "Location"),
        ({"Location": "", "Latitude": "51.5"}, "bad_value", "both"),
        ({"Media": 3}, "wrong_type", "Media"),
        ({"Media": [{"type": "image"}]}, "wrong_type", "Media"),
        ({"Content": "x" * 65537}, "oversized_field", "message"),
        ({"Uid": "u" * 1025}, "oversized_field", "user.id"),
        ({"Notification Date/Time Local": "x" * 65}, "oversized_field", "Local"),
    ],
)
def test_bad_records(change: dict[str, Any], reason: str, words: str) -> None:
    with pytest.raises(Invalid) as exc:
        device.normalise({**ROW, **change})
    assert exc.value.reason == reason
    assert words in exc.value.detail


def test_owner_name_is_the_user_without_uid() -> None:
    event = validate(device.normalise({**ROW, "Uid": ""}))
    assert event.user_id == "Alex Morgan"


@pytest.mark.parametrize(
    ("location", "lat", "lon"),
    [("51.5072, -0.1276", 51.5072, -0.1276), ("(51.5 -0.1)", 51.5, -0.1), ([51.5, -0.1], 51.5, -0.1),
     ({"latitude": 51.5, "longitude": -0.1}, 51.5, -0.1)],
)
def test_location_forms(location: Any, lat: float, lon: float) -> None:
    doc = device.normalise({**ROW, "Location": location})
    assert doc["source"]["geo"]["location"] == {"lat": lat, "lon": lon}


def test_separate_latitude_and_longitude_columns() -> None:
    row = {k: v for k, v in ROW.items() if k != "Location"}
    doc = device.normalise({**row, "Latitude": "53.48", "Longitude": "-2.24"})
    assert doc["source"]["geo"]["location"] == {"lat": 53.48, "lon": -2.24}
    assert "source" not in device.normalise(row)


def test_media() -> None:
    doc = device.normalise({**ROW, "Media": "a.JPEG | clip.mp4, voice.opus\nscan.heic;README"})
    assert doc["custodes"]["media"] == [
        {"type": "image", "name": "a.JPEG"}, {"type": "video", "name": "clip.mp4"},
        {"type": "audio", "name": "voice.opus"}, {"type": "image", "name": "scan.heic"},
        {"type": "file", "name": "README"},
    ]
    listed = device.normalise({**ROW, "Media": [{"name": "x.png"}, {"type": "sticker", "name": "s.webp"}, "y.gif"]})
    assert listed["custodes"]["media"] == [
        {"name": "x.png", "type": "image"}, {"type": "sticker", "name": "s.webp"}, {"type": "image", "name": "y.gif"},
    ]
    assert "media" not in device.normalise({**ROW, "Media": " ; "})["custodes"]


def test_is_device() -> None:
    assert device.is_device(ROW)
    assert device.is_device(["uid", "notification type", "notification date/time"])
    assert not device.is_device(["Uid", "Notification Type"])  # no server time
    assert not device.is_device(["Officer", "Timestamp", "Action"])


def test_the_sample_files_agree() -> None:
    csv_docs = [r.doc for r in read(DATA / "device_notifications.csv") if r.doc]
    jsonl_docs = [r.doc for r in read(DATA / "device_notifications.jsonl") if r.doc]
    assert csv_docs[0] == jsonl_docs[0]  # the same notification in either format: the same event and id


COLUMN_NAMES = [*(label for label in device.LABELS.values()), "Device ID (IMEI)", "Latitude", "Longitude", "x"]
cells = (
    st.text(max_size=30)
    | st.sampled_from(["", "51.5,-0.1", "2024-03-05 14:03:22", "05/03/2024 14:03", "Log On", "a.jpg;b"])
    | st.datetimes().map(str)
    | st.from_regex(r"-?[0-9]{1,3}\.[0-9]{1,4}, ?-?[0-9]{1,3}\.[0-9]{1,4}", fullmatch=True)
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(COLUMN_NAMES) | st.text(max_size=12), cells, max_size=14))
def test_never_raises_anything_but_invalid(record: dict[str, str]) -> None:
    try:
        doc = device.normalise(record)
    except Invalid as exc:
        assert exc.reason in REASONS
    else:
        validate(doc)
        assert doc["event"]["dataset"] == "device.notification"


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.text(alphabet=st.characters(codec=None, categories=None)),
                       max_size=6),
       st.sampled_from(COLUMN_NAMES))
def test_never_raises_on_any_characters(record: dict[str, str], column: str) -> None:
    record = {**ROW, **record, column: record.get(column, "\ud800")}  # lone surrogates included
    try:
        device.normalise(record)
    except Invalid as exc:
        assert exc.reason in REASONS
