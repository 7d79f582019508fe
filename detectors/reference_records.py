"""The reference records of each kind (``KINDS``) and parsing one upsert record into its key and
value; :mod:`detectors.reference` builds the snapshot from them. Pure: strings in, records out."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .postcode import postcode_area

KINDS = ("staff", "case", "restricted", "sharing", "app", "peer", "destination", "host")
KEY_FIELDS = {
    "staff": "user_id",
    "case": "case_ref",
    "restricted": "record_id",
    "sharing": "party",
    "app": "policy_set",
    "peer": "group",
    "destination": "domain",
    "host": "host",
}
"""The field that identifies a record of each kind (also the Kafka message key on its topic)."""

ANY_DATASET = "*"
LIST_SEPARATOR = ";"
"""In CSV files a list cell holds items separated by this (``datasets`` = ``a;b``)."""



class ReferenceError(ValueError):  # noqa: A001 - the domain's own name, not the builtin's meaning
    """A reference record that cannot be used (says which field; never echoes whole records)."""


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Staff:
    user_id: str
    aliases: tuple[str, ...] = ()
    """Every other id the person is known by in some source (UPN, e-mail, Google profile id,
    ``DOMAIN\\sam``, staff number, device IMEIs): see :mod:`detectors.identity`."""
    team: str | None = None
    role: str | None = None
    home_postcode_area: str | None = None
    start_date: str | None = None
    leave_date: str | None = None
    """The last day of employment (ISO date) or the exact moment access ended (ISO date-time)."""
    left_at: float | None = None
    """POSIX seconds from which the person is no longer staff: the midnight (UTC) after
    ``leave_date``, or ``leave_date`` itself when it is a date-time."""
    notice_date: str | None = None
    """The day the person resigned or was given notice (ISO date)."""
    notice_at: float | None = None
    """POSIX seconds: the start (midnight UTC) of ``notice_date``."""
    suspended: bool = False
    """Suspended from duty (``suspended``: true or the ISO date it began)."""
    suspended_at: float | None = None
    """When the suspension began, if a date was given (None with ``suspended`` true: always)."""
    restricted_duties: bool = False
    privileged: bool = False
    """Holds privileged access (system administrator, vetting, professional standards)."""
    primary_hosts: tuple[str, ...] = ()
    """Hosts assigned to this person (asset register): a logon there by someone else is noticed."""

    @property
    def peer_group(self) -> str | None:
        """Peer group for baselines: ``team/role`` (either may be missing)."""
        if self.team is None and self.role is None:
            return None
        return f"{self.team or '-'}/{self.role or '-'}"


@dataclass(frozen=True, slots=True)
class Party:
    party: str
    domains: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    """Lower-cased alternative names (``Acme Mailing Ltd``)."""
    datasets: frozenset[str] = frozenset()
    """Datasets this party may receive; ``*`` means any."""

    def may_receive(self, dataset: str | None) -> bool:
        return ANY_DATASET in self.datasets or (dataset is not None and dataset in self.datasets)


@dataclass(frozen=True, slots=True)
class PeerBaseline:
    group: str
    mean: tuple[float, ...]
    """Mean events per member per hour, one per :func:`detectors.peers.bucket_of` bucket (48)."""
    std: tuple[float, ...]
    members: int = 0
    common: bytes = b""
    """A Bloom filter (``common_hashes`` hash functions) of the ``<kind>:<value>`` keys of
    :mod:`detectors.first_use` that at least ``common_members`` of the group used (empty: unknown)."""
    common_hashes: int = 0
    media_day: tuple[float, ...] = ()
    """The group's usual day on each :mod:`detectors.media_volume` channel (files copied to removable
    media, attachments mailed outside): mean count over the members' days of use (empty: unknown)."""


DESTINATION_CATEGORIES = ("job_search", "cloud_storage", "paste_leak", "hacking", "personal_webmail")
"""Risk categories of web and mail destinations (reference kind ``destination``)."""


def _flag(rec: Mapping[str, Any], name: str) -> tuple[bool, float | None]:
    """A yes/no HR flag that may instead give the date it began: (set, POSIX start or None)."""
    value = rec.get(name)
    if value is None or value is False or value == "" or (
            isinstance(value, str) and value.lower() in ("false", "no", "0")):
        return False, None
    if value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "1")):
        return True, None
    if isinstance(value, str):
        return True, _instant_at(value, name)
    raise ReferenceError(f"{name} must be true/false or an ISO date")


def text_field(rec: Mapping[str, Any], name: str, required: bool = False) -> str | None:
    value = rec.get(name)
    if value is None or value == "":
        if required:
            raise ReferenceError(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ReferenceError(f"{name} must be a string")
    return str(value).strip()


def _list(rec: Mapping[str, Any], name: str) -> list[str]:
    value = rec.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [v for v in value.split(LIST_SEPARATOR)]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str | int) for v in value):
        raise ReferenceError(f"{name} must be a list of strings")
    return [str(v).strip() for v in value if str(v).strip()]


def _floats(rec: Mapping[str, Any], name: str) -> tuple[float, ...]:
    value = rec.get(name)
    if isinstance(value, str):
        value = value.split(LIST_SEPARATOR)
    if not isinstance(value, list | tuple):
        raise ReferenceError(f"{name} must be a list of numbers")
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ReferenceError(f"{name} must be a list of numbers") from None
    if any(not v >= 0 for v in out):
        raise ReferenceError(f"{name} must hold non-negative numbers")
    return out


def _instant_after(value: str, name: str) -> float:
    """A leave date -> the moment after it: midnight UTC following a date, or the date-time itself."""
    try:
        if "T" in value or " " in value.strip():
            moment = datetime.fromisoformat(value)
        else:
            day = date.fromisoformat(value)
            return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    except ValueError:
        raise ReferenceError(f"{name} must be an ISO 8601 date") from None
    if moment.tzinfo is None:
        raise ReferenceError(f"{name} date-time needs a timezone offset")
    return moment.timestamp()


def _instant_at(value: str, name: str) -> float:
    """A date -> its start (midnight UTC); a date-time with offset -> itself."""
    if "T" in value or " " in value.strip():
        return _instant_after(value, name)
    return _instant_after(value, name) - 86400


def parse_record(kind: str, rec: Mapping[str, Any]) -> tuple[str, Any]:
    """(key, value) of one upsert record of ``kind``."""
    key = text_field(rec, KEY_FIELDS[kind], required=True)
    assert key is not None
    if kind == "staff":
        leave = text_field(rec, "leave_date")
        start = text_field(rec, "start_date")
        if start is not None:
            _instant_after(start, "start_date")
        area = text_field(rec, "home_postcode_area")
        if area is not None and postcode_area(area) is None:
            raise ReferenceError("home_postcode_area is not a UK postcode area or district")
        notice = text_field(rec, "notice_date")
        suspended, suspended_at = _flag(rec, "suspended")
        return key, Staff(
            user_id=key, aliases=tuple(_list(rec, "aliases")), team=text_field(rec, "team"),
            role=text_field(rec, "role"),
            home_postcode_area=postcode_area(area), start_date=start, leave_date=leave,
            left_at=_instant_after(leave, "leave_date") if leave else None,
            notice_date=notice,
            notice_at=_instant_at(notice, "notice_date") if notice else None,
            suspended=suspended, suspended_at=suspended_at,
            restricted_duties=_flag(rec, "restricted_duties")[0], privileged=_flag(rec, "privileged")[0],
            primary_hosts=tuple(h.lower() for h in _list(rec, "primary_hosts")),
        )
    if kind == "case":
        return key, frozenset(_list(rec, "assigned"))
    if kind == "restricted":
        return key, frozenset(f.lower() for f in _list(rec, "flags"))
    if kind == "sharing":
        return key, Party(
            party=key,
            domains=frozenset(d.lower().strip(".") for d in _list(rec, "domains")),
            names=frozenset(n.lower() for n in [key, *_list(rec, "names")]),
            datasets=frozenset(_list(rec, "datasets")),
        )
    if kind == "app":
        return key, frozenset(_list(rec, "apps"))
    if kind == "peer":
        mean, std = _floats(rec, "mean"), _floats(rec, "std")
        if len(mean) != len(std) or not mean:
            raise ReferenceError("mean and std must be lists of the same, non-zero length")
        members = rec.get("members", 0)
        if isinstance(members, bool) or not isinstance(members, int) or members < 0:
            raise ReferenceError("members must be a non-negative integer")
        common, hashes = b"", 0
        if rec.get("common"):
            try:
                common = base64.b64decode(str(rec["common"]), validate=True)
            except ValueError:
                raise ReferenceError("common must be base64") from None
            hashes = rec.get("common_hashes", 0)
            if isinstance(hashes, bool) or not isinstance(hashes, int) or not 1 <= hashes <= 16:
                raise ReferenceError("common_hashes must be an integer from 1 to 16")
        media_day = _floats(rec, "media_day") if rec.get("media_day") is not None else ()
        return key, PeerBaseline(group=key, mean=mean, std=std, members=members, common=common,
                                 common_hashes=hashes, media_day=media_day)
    if kind == "host":
        owner = text_field(rec, "owner", required=True)
        return key.lower(), owner
    if kind == "destination":
        category = text_field(rec, "category", required=True)
        if category not in DESTINATION_CATEGORIES:
            raise ReferenceError(f"category must be one of {', '.join(DESTINATION_CATEGORIES)}")
        return key.lower().strip("."), category
    raise ReferenceError(f"unknown reference kind {kind!r}; known: {', '.join(KINDS)}")
