"""Managed-device notification records (the export a police monitoring pilot disclosed) -> canonical.

One record per notification, as CSV (a header row) or JSON lines, with these columns. Names are
matched ignoring case, spaces and punctuation, so ``Device ID (IMEI)``, ``device_id`` and ``IMEI``
are the same column; columns not listed are ignored.

==============================  ===========================================================
column                          canonical field
==============================  ===========================================================
Uid                             ``user.id``
Owner Name                      ``user.name`` (and the user, when Uid is empty)
Phone Number                    ``custodes.user.phone``
Device ID (IMEI)                ``host.id``
Notification Type               ``event.action`` as given; ``custodes.activity`` per ACTIVITY
Policy Set                      ``custodes.policy_set``
Application                     ``custodes.application.id`` (e.g. ``com.whatsapp``)
Location / Latitude+Longitude   ``source.geo.location`` ``{lat, lon}`` (``"lat,lon"`` string,
                                ``[lat, lon]``, ``{"lat":…,"lon":…}`` or two columns)
Content                         ``message``
Media                           ``custodes.media``: ``[{type, name}]``; a string is split on
                                ``; | ,`` and new lines; ``type`` is inferred from the extension
Notification Date/Time          ``@timestamp``. Server time: without a timezone it is UTC
Notification Date/Time Local    ``custodes.device.local_time``: the string as given
Notification ID / Event ID      ``event.id``; without one, a hash of the normalised record
==============================  ===========================================================

Why a server time without a timezone is UTC: it is stamped by the management server's clock, which
the pilot's export writes in UTC, whereas the device-local column is in whatever zone the handset was
set to (and may be wrong or changed by the user), so it is kept verbatim as evidence only and never
used for ordering. Date-times are ISO 8601 (``2024-03-05 14:03:22``, ``…T14:03:22Z``), UK day-first
``05/03/2024 14:03[:22]`` (5 March), or POSIX seconds/milliseconds in JSON.

Every document gets ``event.dataset = "device.notification"`` and ``custodes.schema_version = 1``,
and is checked with :func:`stream.contract.schema.validate`, so a bad record raises :class:`Invalid` here,
at its line in the source file, rather than later in the worker.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from stream.contract.schema import Invalid, validate
from stream.sources.ecs import put, stable_id, utc_iso

DATASET = "device.notification"

COLUMNS: dict[str, tuple[str, ...]] = {
    "uid": ("uid", "userid"),
    "owner": ("ownername", "owner"),
    "phone": ("phonenumber", "phone", "msisdn"),
    "device": ("deviceidimei", "deviceid", "imei"),
    "type": ("notificationtype",),
    "policy": ("policyset",),
    "app": ("application", "applicationid", "app"),
    "location": ("location",),
    "lat": ("latitude", "lat"),
    "lon": ("longitude", "lon", "lng"),
    "content": ("content",),
    "media": ("media",),
    "local": ("notificationdatetimelocal", "notificationdatetimedevice", "localdatetime"),
    "server": ("notificationdatetime", "notificationdatetimeutc", "notificationdatetimeserver"),
    "id": ("notificationid", "eventid"),
}
"""Role -> accepted column names, normalised by :func:`column_key`."""

LABELS = {
    "uid": "Uid", "owner": "Owner Name", "phone": "Phone Number", "device": "Device ID",
    "type": "Notification Type", "policy": "Policy Set", "app": "Application", "location": "Location",
    "lat": "Latitude", "lon": "Longitude", "content": "Content", "media": "Media",
    "local": "Notification Date/Time Local", "server": "Notification Date/Time", "id": "Notification ID",
}

_ROLE = {name: role for role, names in COLUMNS.items() for name in names}

ACTIVITY: tuple[tuple[str, str], ...] = (
    (r"\b(log ?off|log ?out|sign(ed)? ?out|device locked|screen locked)\b", "logoff"),
    (r"\b(log ?on|log ?in|sign(ed)? ?in|device unlocked|screen unlocked)\b", "logon"),
    (r"\b(typed|typing|keyboard|keystrokes?|keyword)\b", "typed"),
    (r"\bgroup\b.*\b(join(ed)?|left|leave|added|removed)\b|\b(join(ed)?|left|added to|removed from)\b.*\bgroup\b",
     "membership"),
    (r"\b(messages?|sms|mms|chat|im|instant message|e ?mail|notification)\b", "message"),
    (r"\b(share|shared|sharing)\b", "share"),
    (r"\b(print|printed|printing)\b", "print"),
    (r"\b(usb|removable|sd card)\b", "removable_media"),
    (r"\bupload(ed|ing)?\b", "web_upload"),
)
"""Notification Type (lower case, punctuation as spaces) -> ``custodes.activity``; first match wins,
no match is ``other``. ``typed`` (typed activity, keystrokes, keyword hits) becomes ``message`` when the
record has Content (text typed into an app) and ``other`` when it has none."""

_ACTIVITY = tuple((re.compile(pattern), kind) for pattern, kind in ACTIVITY)

IMAGE = frozenset({"jpg", "jpeg", "png", "gif", "webp", "heic", "heif", "bmp", "tif", "tiff"})
VIDEO = frozenset({"mp4", "mov", "m4v", "3gp", "avi", "mkv", "webm"})
AUDIO = frozenset({"mp3", "m4a", "aac", "ogg", "oga", "opus", "wav", "amr"})

_DAY_FIRST = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S.%f", "%d-%m-%Y %H:%M:%S")
_NUMBER = re.compile(r"^[-+]?\d{1,3}(?:\.\d+)?$")


@lru_cache(maxsize=4096)
def column_key(name: str) -> str:
    """``Device ID (IMEI)`` -> ``deviceidimei``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def is_device(columns: Iterable[str]) -> bool:
    """Whether a CSV header / the keys of a JSON record are a device-notification export."""
    roles = {_ROLE.get(column_key(c)) for c in columns if isinstance(c, str)}
    return {"type", "server"} <= roles and bool(roles & {"uid", "owner", "device"})


def activity(notification_type: str | None, has_content: bool) -> str:
    """``custodes.activity`` for a Notification Type (see :data:`ACTIVITY`)."""
    if not notification_type:
        return "other"
    text = re.sub(r"[^a-z0-9]+", " ", notification_type.lower()).strip()
    for pattern, kind in _ACTIVITY:
        if pattern.search(text):
            if kind == "typed":
                return "message" if has_content else "other"
            return kind
    return "other"


def media_type(name: str) -> str:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext in IMAGE:
        return "image"
    if ext in VIDEO:
        return "video"
    if ext in AUDIO:
        return "audio"
    return "file"


def normalise(record: Mapping[str, Any]) -> dict[str, Any]:
    """One device-notification record (CSV row or JSON object) -> a validated canonical document."""
    if not isinstance(record, Mapping):
        raise Invalid("not_an_object", f"record is a {type(record).__name__}, not an object")
    values: dict[str, Any] = {}
    for name, value in record.items():
        role = _ROLE.get(column_key(name)) if isinstance(name, str) else None
        if role and role not in values and value is not None and value != "":
            values[role] = value

    doc: dict[str, Any] = {"@timestamp": utc_iso(_server_time(values.get("server")))}
    text = {role: _text(values, role) for role in ("id", "uid", "owner", "phone", "device", "type",
                                                   "policy", "app", "local")}
    content = _content(values.get("content"))
    event: dict[str, Any] = {"dataset": DATASET}
    if text["type"]:
        event["action"] = text["type"]
    doc["event"] = event
    user = {k: v for k, v in (("id", text["uid"]), ("name", text["owner"])) if v}
    if user:
        doc["user"] = user
    if text["device"]:
        put(doc, "host.id", text["device"])
    location = _location(values)
    if location:
        put(doc, "source.geo.location", location)
    if content is not None:
        doc["message"] = content
    custodes: dict[str, Any] = {"schema_version": 1, "activity": activity(text["type"], bool(content))}
    for role, path in (("policy", "policy_set"), ("app", "application.id"), ("phone", "user.phone"),
                       ("local", "device.local_time")):
        if text[role]:
            put(custodes, path, text[role])
    media = _media(values.get("media"))
    if media:
        custodes["media"] = media
    doc["custodes"] = custodes
    if len(text["local"] or "") > 64:
        raise Invalid("oversized_field", "Notification Date/Time Local is longer than 64 characters")
    event["id"] = text["id"] or stable_id(doc)
    validate(doc)
    return doc


def _text(values: Mapping[str, Any], role: str) -> str | None:
    value = values.get(role)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid("wrong_type", f"{LABELS[role]} must be text")
    return str(value).strip() or None


def _content(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("wrong_type", "Content must be text")
    return value


def _server_time(value: Any) -> datetime:
    label = LABELS["server"]
    if value is None:
        raise Invalid("missing_timestamp", f"{label} (server time) is required")
    if isinstance(value, bool):
        raise Invalid("wrong_type", f"{label} must be a date-time")
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise Invalid("bad_timestamp", f"{label} is out of range") from None
    if not isinstance(value, str):
        raise Invalid("wrong_type", f"{label} must be a date-time")
    value = value.strip()
    if len(value) > 64:
        raise Invalid("oversized_field", f"{label} is longer than 64 characters")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        when = None
        for fmt in _DAY_FIRST:
            try:
                when = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if when is None:
        raise Invalid("bad_timestamp", f"{label} is not ISO 8601 nor dd/mm/yyyy hh:mm[:ss]")
    if when.tzinfo is None or when.utcoffset() is None:
        when = when.replace(tzinfo=UTC)  # the server's clock, in UTC: see the module docstring
    try:
        when.astimezone(UTC)
    except OverflowError:
        raise Invalid("bad_timestamp", f"{label} is out of range") from None
    return when


def _location(values: Mapping[str, Any]) -> dict[str, float] | None:
    value = values.get("location")
    if value is not None:
        if isinstance(value, str):
            parts = [p for p in re.split(r"[\s,;()]+", value) if p]
            if len(parts) != 2:
                raise Invalid("bad_value", "Location must be 'lat,lon'")
            lat, lon = parts
        elif isinstance(value, list | tuple) and len(value) == 2:
            lat, lon = value
        elif isinstance(value, Mapping):
            lat = value.get("lat", value.get("latitude"))
            lon = value.get("lon", value.get("longitude", value.get("lng")))
        else:
            raise Invalid("wrong_type", "Location must be 'lat,lon', [lat, lon] or {lat, lon}")
    else:
        lat, lon = values.get("lat"), values.get("lon")
        if lat is None and lon is None:
            return None
    if lat is None or lon is None:
        raise Invalid("bad_value", "Location needs both latitude and longitude")
    return {"lat": _degrees(lat, "latitude", 90), "lon": _degrees(lon, "longitude", 180)}


def _degrees(value: Any, label: str, limit: float) -> float:
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("wrong_type", f"Location {label} must be a decimal number")
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise Invalid("bad_value", f"Location {label} must be between -{limit} and {limit}")
    return float(value)


def _media(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part.strip() for part in re.split(r"[;|,\r\n]", value)]
    elif not isinstance(value, list):
        raise Invalid("wrong_type", "Media must be text or a list")
    out: list[dict[str, Any]] = []
    for item in value:
        if isinstance(item, str):
            if item.strip():
                out.append({"type": media_type(item.strip()), "name": item.strip()})
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            entry = dict(item)
            if not isinstance(entry.get("type"), str) or not entry["type"]:
                entry["type"] = media_type(entry["name"])
            out.append(entry)
        else:
            raise Invalid("wrong_type", "Media items must be file names or {type, name} objects")
    return out
