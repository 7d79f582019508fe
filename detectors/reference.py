"""Reference data the detectors need from elsewhere: an immutable snapshot and a holder to swap it.

A site maintains eight kinds of reference records (``KINDS``); the record format of each is in
docs/detectors.md and in ``config/reference/*.jsonl``:

``staff``       user id -> team, role, home postcode area, start date, leave date, and the HR context
                the behaviour indicators use: notice date, suspended, restricted duties, privileged,
                primary hosts
``case``        case reference -> user ids assigned to it
``restricted``  record id -> flags (vip, colleague, need_to_know)
``sharing``     an approved third party (its domains and names) -> datasets it may receive
``app``         policy set -> sanctioned application ids
``peer``        peer group -> activity baseline (produced by :mod:`detectors.peers`), and optionally
                what the group commonly uses and its usual day of removable media and attachments
                (:mod:`detectors.peer_profile`)
``host``        host -> the person it is learned to belong to (:mod:`detectors.peer_profile`, from the
                event archive; the asset register, staff ``primary_hosts``, wins where both say)
``destination`` web or mail domain -> risk category (job search, cloud storage, paste/leak, hacking,
                personal webmail; see config/reference/destinations.jsonl)

:class:`Reference` is a snapshot: updating it returns a new one (:meth:`Reference.apply`), so a
detector processing a batch sees one consistent view. The runtime keeps one
:class:`ReferenceHolder`, passes it to every detector at construction and swaps ``holder.current``
when a record arrives (from files at start-up, then from compacted Kafka topics); detectors read
``holder.current`` each time they process a batch, so an update takes effect without a restart.

Everything here is pure: parsing works on strings the runtime has read, never on files.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from types import MappingProxyType
from typing import Any

import orjson

from .identity import IdentityIndex
from .identity import build as build_identities

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

_EMPTY: Mapping[str, Any] = MappingProxyType({})


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


def _text(rec: Mapping[str, Any], name: str, required: bool = False) -> str | None:
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


_POSTCODE = re.compile(r"^([A-Z]{1,2})(\d[A-Z\d]?)?(?:\s*\d[A-Z]{2})?$")


def postcode_area(value: str | None) -> str | None:
    """Normalise a postcode, district or area to its outward part: ``ng7 2rd`` -> ``NG7``,
    ``NG7`` -> ``NG7``, ``ng`` -> ``NG``. None if it does not look like a UK postcode."""
    if not value:
        return None
    v = " ".join(value.upper().split())
    m = _POSTCODE.match(v)
    if m is None:
        return None
    return m.group(1) + (m.group(2) or "")


def same_area(a: str | None, b: str | None) -> bool:
    """Two postcode parts in the same place, compared at the coarser of their two granularities
    (district ``NG7`` with district; area ``NG`` with anything in NG)."""
    a, b = postcode_area(a), postcode_area(b)
    if a is None or b is None:
        return False
    if a.isalpha() or b.isalpha():
        return _letters(a) == _letters(b)
    return a == b


def _letters(outward: str) -> str:
    """The postcode area (leading letters) of an outward code: ``NG7`` -> ``NG``, ``B15`` -> ``B``."""
    n = 2 if len(outward) > 1 and outward[1].isalpha() else 1
    return outward[:n]


def _parse(kind: str, rec: Mapping[str, Any]) -> tuple[str, Any]:
    """(key, value) of one upsert record of ``kind``."""
    key = _text(rec, KEY_FIELDS[kind], required=True)
    assert key is not None
    if kind == "staff":
        leave = _text(rec, "leave_date")
        start = _text(rec, "start_date")
        if start is not None:
            _instant_after(start, "start_date")
        area = _text(rec, "home_postcode_area")
        if area is not None and postcode_area(area) is None:
            raise ReferenceError("home_postcode_area is not a UK postcode area or district")
        notice = _text(rec, "notice_date")
        suspended, suspended_at = _flag(rec, "suspended")
        return key, Staff(
            user_id=key, aliases=tuple(_list(rec, "aliases")), team=_text(rec, "team"), role=_text(rec, "role"),
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
        owner = _text(rec, "owner", required=True)
        return key.lower(), owner
    if kind == "destination":
        category = _text(rec, "category", required=True)
        if category not in DESTINATION_CATEGORIES:
            raise ReferenceError(f"category must be one of {', '.join(DESTINATION_CATEGORIES)}")
        return key.lower().strip("."), category
    raise ReferenceError(f"unknown reference kind {kind!r}; known: {', '.join(KINDS)}")


# -- the snapshot -------------------------------------------------------------------------------


def _index_parties(sharing: Mapping[str, Party]) -> tuple[Mapping[str, tuple[str, ...]], Mapping[str, tuple[str, ...]]]:
    by_domain: dict[str, list[str]] = {}
    by_name: dict[str, list[str]] = {}
    for key, party in sharing.items():
        for d in party.domains:
            by_domain.setdefault(d, []).append(key)
        for n in party.names:
            by_name.setdefault(n, []).append(key)
    return (MappingProxyType({k: tuple(sorted(v)) for k, v in by_domain.items()}),
            MappingProxyType({k: tuple(sorted(v)) for k, v in by_name.items()}))


@dataclass(frozen=True)
class Reference:
    """An immutable snapshot of all reference data. Empty by default (no data: rules that need it
    do not fire)."""

    staff: Mapping[str, Staff] = field(default_factory=lambda: _EMPTY)
    cases: Mapping[str, frozenset[str]] = field(default_factory=lambda: _EMPTY)
    restricted: Mapping[str, frozenset[str]] = field(default_factory=lambda: _EMPTY)
    sharing: Mapping[str, Party] = field(default_factory=lambda: _EMPTY)
    apps: Mapping[str, frozenset[str]] = field(default_factory=lambda: _EMPTY)
    peers: Mapping[str, PeerBaseline] = field(default_factory=lambda: _EMPTY)
    destinations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Domain -> risk category (reference kind ``destination``)."""
    hosts: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Host (lower case) -> the person it was learned to belong to (reference kind ``host``)."""
    version: int = 0
    """Incremented by every update (for metrics and logs)."""
    _by_domain: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)
    _by_name: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)
    _host_owner: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)

    _ATTR = {"staff": "staff", "case": "cases", "restricted": "restricted", "sharing": "sharing",
             "app": "apps", "peer": "peers", "destination": "destinations", "host": "hosts"}

    # -- updates (pure: a new snapshot) ----------------------------------------------------------

    def apply(self, kind: str, record: Mapping[str, Any] | None = None, key: str | None = None) -> Reference:
        """One update: an upsert ``record``; a delete when ``record`` is None (``key`` given, like a
        Kafka tombstone) or the record says ``"deleted": true``."""
        return self.apply_many([(kind, record, key)])

    def apply_many(self, updates: Iterable[tuple[str, Mapping[str, Any] | None, str | None]]) -> Reference:
        """Several updates in order, copying each touched table once (bulk loads)."""
        tables: dict[str, dict[str, Any]] = {}
        n = 0
        for kind, record, key in updates:
            if kind not in KINDS:
                raise ReferenceError(f"unknown reference kind {kind!r}; known: {', '.join(KINDS)}")
            attr = self._ATTR[kind]
            table = tables.get(attr)
            if table is None:
                table = tables[attr] = dict(getattr(self, attr))
            if record is not None and record.get("deleted") is True:
                key = _text(record, KEY_FIELDS[kind], required=True)
                record = None
            if record is None:
                if key is None:
                    raise ReferenceError(f"a {kind} delete needs its {KEY_FIELDS[kind]}")
                table.pop(str(key), None)
            else:
                k, value = _parse(kind, record)
                table[k] = value
            n += 1
        if not n:
            return self
        frozen = {attr: MappingProxyType(t) for attr, t in tables.items()}
        new = replace(self, **frozen, version=self.version + n)  # type: ignore[arg-type]
        if "staff" not in frozen and "identities" in self.__dict__:  # the alias index still holds
            new.__dict__["identities"] = self.__dict__["identities"]
        if "sharing" in frozen:
            by_domain, by_name = _index_parties(new.sharing)
            object.__setattr__(new, "_by_domain", by_domain)
            object.__setattr__(new, "_by_name", by_name)
        if "staff" in frozen:
            owners = {h: p.user_id for p in new.staff.values() for h in p.primary_hosts}
            object.__setattr__(new, "_host_owner", MappingProxyType(owners))
        return new

    # -- queries ---------------------------------------------------------------------------------

    def person(self, user_id: str) -> Staff | None:
        return self.staff.get(user_id)

    @cached_property
    def identities(self) -> IdentityIndex:
        """Every alias of the staff directory -> person id (built once per directory snapshot)."""
        return build_identities(self.staff.values())

    def parties_for_domain(self, domain: str) -> tuple[Party, ...]:
        """Parties registered for ``domain`` or a parent of it (``upload.acme.example`` -> ``acme.example``)."""
        d = domain.lower().strip(".")
        while d:
            keys = self._by_domain.get(d)
            if keys:
                return tuple(self.sharing[k] for k in keys)
            d = d.partition(".")[2]
        return ()

    def parties_named(self, name: str) -> tuple[Party, ...]:
        keys = self._by_name.get(name.strip().lower(), ())
        return tuple(self.sharing[k] for k in keys)

    def host_owner(self, host: str) -> str | None:
        """The person a host is assigned to (staff ``primary_hosts``), else the person it was learned
        to belong to (reference kind ``host``), if any."""
        h = host.lower()
        owner = self._host_owner.get(h) if self._host_owner else None
        if owner is None and self.hosts:
            owner = self.hosts.get(h)
        return owner

    def category_of(self, domain: str | None) -> str | None:
        """The risk category of ``domain`` or of a parent domain (``eu.dropbox.com`` -> ``dropbox.com``)."""
        if not domain or not self.destinations:
            return None
        d = domain.lower().strip(".")
        while d:
            c = self.destinations.get(d)
            if c is not None:
                return c
            d = d.partition(".")[2]
        return None

    def sanctioned(self, policy_set: str, app_id: str) -> bool | None:
        """True/False, or None when the policy set is not in the register."""
        apps = self.apps.get(policy_set)
        if apps is None:
            return None
        return app_id in apps or "*" in apps


class ReferenceHolder:
    """The one mutable thing: ``current`` is swapped, never changed in place (one attribute
    assignment, so a detector mid-batch keeps the snapshot it started with)."""

    def __init__(self, current: Reference | None = None) -> None:
        self.current = current if current is not None else Reference()

    def apply(self, kind: str, record: Mapping[str, Any] | None = None, key: str | None = None) -> Reference:
        self.current = self.current.apply(kind, record, key)
        return self.current

    def apply_many(self, updates: Iterable[tuple[str, Mapping[str, Any] | None, str | None]]) -> Reference:
        self.current = self.current.apply_many(updates)
        return self.current

    def replace(self, reference: Reference) -> None:
        self.current = reference


def as_holder(reference: ReferenceHolder | Reference | None) -> ReferenceHolder:
    if isinstance(reference, ReferenceHolder):
        return reference
    if reference is None or isinstance(reference, Reference):
        return ReferenceHolder(reference)
    raise TypeError("reference must be a ReferenceHolder, a Reference or None")


# -- parsing files (pure: over text) -------------------------------------------------------------


def kind_of(file_name: str) -> tuple[str, str]:
    """``staff.jsonl`` -> (``staff``, ``jsonl``); plural stems allowed (``cases.csv``, ``apps.jsonl``)."""
    base = file_name.rsplit("/", 1)[-1]
    stem, _, fmt = base.rpartition(".")
    if fmt not in ("jsonl", "csv"):
        raise ReferenceError(f"{base}: reference files are .jsonl or .csv")
    plural = {"cases": "case", "apps": "app", "peers": "peer", "destinations": "destination", "hosts": "host"}
    stem = plural.get(stem, stem)
    if stem not in KINDS:
        raise ReferenceError(f"{base}: the file name must be one of {', '.join(KINDS)} (+ .jsonl/.csv)")
    return stem, fmt


def parse_records(text: str, fmt: str = "jsonl") -> Iterator[dict[str, Any]]:
    """Records from the text of a JSON Lines (``#`` comments and blank lines skipped) or CSV file
    (header row; list cells separated by ``;``; empty cells absent)."""
    if fmt == "jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise ReferenceError(f"line {number}: not valid JSON") from None
            if not isinstance(rec, dict):
                raise ReferenceError(f"line {number}: not a JSON object")
            yield rec
    elif fmt == "csv":
        for rec in csv.DictReader(io.StringIO(text)):
            out: dict[str, Any] = {k.strip(): v.strip() for k, v in rec.items() if k and v and v.strip()}
            if out.get("deleted", "").lower() in ("true", "1", "yes"):
                out["deleted"] = True
            else:
                out.pop("deleted", None)
            if "members" in out:
                out["members"] = int(out["members"])
            yield out
    else:
        raise ReferenceError(f"unknown format {fmt!r}")


def load(texts: Mapping[str, str], base: Reference | None = None) -> Reference:
    """A snapshot from ``{file name: file text}`` (e.g. the contents of config/reference/)."""
    updates: list[tuple[str, Mapping[str, Any] | None, str | None]] = []
    for name in sorted(texts):
        kind, fmt = kind_of(name)
        try:
            updates.extend((kind, rec, None) for rec in parse_records(texts[name], fmt))
        except ReferenceError as exc:
            raise ReferenceError(f"{name}: {exc}") from None
    try:
        return (base or Reference()).apply_many(updates)
    except ReferenceError as exc:
        raise ReferenceError(f"reference data: {exc}") from None


def decode_update(
    kind: str, key: bytes | str | None, value: bytes | None
) -> tuple[str, dict[str, Any] | None, str | None]:
    """One message of a compacted reference topic -> an update for :meth:`Reference.apply_many`:
    a JSON object is an upsert, a null value (tombstone) deletes the record named by the key."""
    k = key.decode() if isinstance(key, bytes) else key
    if value is None:
        return kind, None, k
    try:
        rec = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise ReferenceError(f"{kind} update: not valid JSON") from None
    if not isinstance(rec, dict):
        raise ReferenceError(f"{kind} update: not a JSON object")
    return kind, rec, k
