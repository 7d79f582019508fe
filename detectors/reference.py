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

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any

import orjson

from .identity import IdentityIndex
from .identity import build as build_identities
from .reference_records import (
    KEY_FIELDS,
    KINDS,
    Party,
    PeerBaseline,
    ReferenceError,
    Staff,
    parse_record,
    text_field,
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})


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
                key = text_field(record, KEY_FIELDS[kind], required=True)
                record = None
            if record is None:
                if key is None:
                    raise ReferenceError(f"a {kind} delete needs its {KEY_FIELDS[kind]}")
                table.pop(str(key), None)
            else:
                k, value = parse_record(kind, record)
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
