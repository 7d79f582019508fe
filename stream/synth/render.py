"""Planned activities -> documents: canonical audit events (ECS names + ``custodes.*``) and
managed-device notification records (the export format :mod:`stream.sources.device` reads).

An activity is ``(kind, payload)``; :func:`render` turns one into ``(is_device, document)``. Phone
activities (``unlock``, ``phone_msg``) become device notifications; everything else is canonical.
"""

from __future__ import annotations

import time
from typing import Any

from .organisation import Person

DEVICE_KINDS = frozenset({"unlock", "phone_msg"})


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def server_time(ts: float) -> str:
    """The device export's server time: UTC without a zone (see stream/sources/device.py)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _located(doc: dict[str, Any], payload: dict[str, Any]) -> None:
    if "lat" in payload:
        doc["source"] = {"geo": {"location": {"lat": payload["lat"], "lon": payload["lon"]}}}


def render(person: Person, kind: str, payload: dict[str, Any], ts: float, event_id: str) -> tuple[bool, dict[str, Any]]:
    if kind in DEVICE_KINDS:
        return True, _device(person, kind, payload, ts, event_id)
    return False, _canonical(person, kind, payload, ts, event_id)


def _canonical(person: Person, kind: str, payload: dict[str, Any], ts: float, event_id: str) -> dict[str, Any]:
    custodes: dict[str, Any] = {"schema_version": 1}
    doc: dict[str, Any] = {"@timestamp": iso(ts), "event": {"id": event_id},
                           "user": {"id": payload.get("as_user", person.user_id)}}
    host = payload.get("host", person.laptop)
    if host:
        doc["host"] = {"id": host}
    if kind in ("logon", "logoff"):
        doc["event"]["action"] = kind
        custodes["activity"] = kind
        custodes["policy_set"] = "managed-laptop"
        _located(doc, payload)
    elif kind == "lookup":
        doc["event"]["action"] = "record-view"
        custodes["activity"] = "record_access"
        record: dict[str, Any] = {"ids": [payload["record"]]}
        if payload.get("district"):
            record["postcode_area"] = payload["district"]
        custodes["record"] = record
        if payload.get("case"):
            custodes["case"] = {"ref": payload["case"]}
        custodes["dataset"] = {"name": payload["dataset"], "sensitivity": payload["sensitivity"]}
    elif kind in ("teams", "group_msg"):
        doc["event"]["action"] = "message-sent"
        doc["message"] = payload["text"]
        custodes["activity"] = "message"
        custodes["policy_set"] = payload.get("policy_set", "managed-laptop")
        custodes["application"] = {"id": payload.get("app", "com.microsoft.teams")}
        if payload.get("group"):
            custodes["group"] = {"id": payload["group"]}
        if payload.get("media"):
            custodes["media"] = [{"type": m[1], "name": m[0]} for m in payload["media"]]
        _located(doc, payload)
    elif kind == "email":
        doc["event"]["action"] = "email-sent"
        doc["email"] = {"to": {"address": payload["to"]}}
        if payload.get("attachments"):
            name = payload.get("file", "attachment.pdf")
            doc["email"]["attachments"] = [{"file": {"name": name, "extension": name.rsplit(".", 1)[-1]}}
                                           for _ in range(payload["attachments"])]
        custodes["activity"] = "message"
        custodes["policy_set"] = "managed-laptop"
        custodes["application"] = {"id": "com.microsoft.office.outlook"}
        if payload.get("file"):
            doc["file"] = {"name": payload["file"]}
        _data(custodes, payload)
    elif kind == "visit":
        doc["event"]["action"] = "web-visit"
        doc["url"] = {"domain": payload["url"]}
        custodes["activity"] = "other"
        custodes["channel"] = "browser"
    elif kind in ("export", "upload", "removable"):
        doc["event"]["action"] = {"export": "report-download", "upload": "file-upload",
                                  "removable": "usb-copy"}[kind]
        custodes["activity"] = {"export": "export", "upload": "web_upload", "removable": "removable_media"}[kind]
        custodes["channel"] = {"export": "report", "upload": "browser", "removable": "usb"}[kind]
        if payload.get("url"):
            doc["url"] = {"domain": payload["url"]}
        if payload.get("destination"):
            doc["destination"] = {"domain": payload["destination"]}
        if payload.get("file"):
            doc["file"] = {"name": payload["file"]}
        _data(custodes, payload)
        if payload.get("min_group") is not None:
            custodes["aggregate"] = {"min_group_size": payload["min_group"]}
    else:
        raise ValueError(f"unknown activity kind {kind!r}")
    doc["custodes"] = custodes
    return doc


def _data(custodes: dict[str, Any], payload: dict[str, Any]) -> None:
    if payload.get("dataset"):
        custodes["dataset"] = {"name": payload["dataset"], "sensitivity": payload.get("sensitivity", "medium")}
    if payload.get("count"):
        custodes["record"] = {"count": payload["count"]}


def _device(person: Person, kind: str, payload: dict[str, Any], ts: float, event_id: str) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "Notification ID": event_id,
        "Uid": person.user_id,
        "Owner Name": person.name,
        "Device ID (IMEI)": person.phone,
        "Policy Set": "managed-phone",
        "Notification Date/Time": server_time(ts),
    }
    if kind == "unlock":
        rec["Notification Type"] = "Device Unlocked"
    else:
        rec["Notification Type"] = "Message Sent"
        rec["Application"] = payload["app"]
        rec["Content"] = payload["text"]
        if payload.get("media"):
            rec["Media"] = ";".join(m[0] for m in payload["media"])
    if "lat" in payload:
        rec["Location"] = f"{payload['lat']},{payload['lon']}"
    return rec
