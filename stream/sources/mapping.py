"""Mapping files: turn any CSV or JSON-lines log with named columns into canonical events, no code.

A mapping is a TOML file (``config/mappings/*.toml``)::

    format = "csv"                      # or "jsonl"
    description = "what log this reads" # optional

    [csv]                               # optional, format = "csv" only
    delimiter = ","                     # one character; "\\t" for TSV
    quotechar = '"'

    [fields]                            # source column -> canonical dotted path
    "Officer" = "user.id"               # JSON lines: the column may be a dotted path into the object
    "Records" = "custodes.record.ids"

    [constants]                         # canonical dotted path -> value, the same for every record
    "custodes.activity" = "record_access"

    [timestamp]                         # -> @timestamp
    column = "When"
    format = "%d/%m/%Y %H:%M:%S"        # strptime; "epoch" / "epoch_ms"; omit for ISO 8601
    timezone = "Europe/London"          # IANA name, for times without an offset

    [types]                             # casts of mapped columns (CSV cells are text)
    "custodes.record.count" = "int"     # "int" | "float" | "str" | "list"
    "custodes.record.ids" = { type = "list", separator = ";" }   # default separator ";"

Real logs mix several kinds of record in one file, spell keys in any case and nest values; a mapping
can say so::

    ignore_case = true                  # column names / JSON keys compared case-insensitively

    [fields]                            # a column may be a path into a JSON record:
    "target[0].alternateId" = "..."     #   an array item,
    "target[*].alternateId" = "..."     #   every item (a list),
    "Parameters[Name=ForwardTo].Value" = "email.to.address"   # the item of a Name/Value list

    [values."event.outcome"]            # value map for a target: source value -> canonical value
    "Succeeded" = "success"             # (compared case-insensitively; "*" = any other value;
    "Failed" = "failure"                #  without "*", an unlisted value is kept as it is)

    [[when]]                            # event kinds: the first [[when]] whose conditions all hold
    if = { Operation = ["FileDownloaded", "FileSyncDownloadedFull"] }   # column -> value(s); "*" = any
    set = { "custodes.activity" = "export", "custodes.document.count" = 1 }   # constants for it
    fields = { ObjectId = "custodes.object.id" }                       # and more fields

Conditions compare case-insensitively; a column holding a list matches when any item does. A record no
[[when]] matches gets only the top-level fields and constants (the worker's activity table may still
classify it).

Times without an offset are read in ``timezone``: a wall-clock time that occurs twice (the autumn
change) is the first occurrence, one that does not exist (the spring change) is read with the offset
before the change (``zoneinfo``'s ``fold=0``). Empty cells and JSON nulls are absent fields. A record
without an ``event.id`` gets a hash of its normalised document; ``custodes.schema_version`` is 1 unless
a constant says otherwise. Every document is checked with :func:`stream.contract.schema.validate`.

Unknown keys, bad values and conflicting paths are a :class:`MappingError` when the file is loaded.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stream.contract.schema import Invalid, validate
from stream.sources.ecs import PATH, put, stable_id, utc_iso

FORMATS = ("csv", "jsonl")
TYPES = ("int", "float", "str", "list")
_KEYS = {
    "": ("format", "description", "csv", "fields", "constants", "timestamp", "types", "ignore_case", "values",
         "when"),
    "when": ("if", "set", "fields"),
    "csv": ("delimiter", "quotechar"),
    "timestamp": ("column", "format", "timezone"),
    "types": ("type", "separator"),
}
_INT = re.compile(r"^[+-]?[0-9]+$")
_FLOAT = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Cast:
    type: str
    separator: str = ";"


@dataclass(frozen=True)
class When:
    """One event kind of a mapping: conditions (column -> accepted lower-case values, None = any) and
    what it adds (constants, fields)."""

    conditions: tuple[tuple[str, frozenset[str] | None], ...]
    constants: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    def holds(self, row: Mapping[str, Any], ignore_case: bool) -> bool:
        for column, accepted in self.conditions:
            value = _get(row, column, ignore_case)
            values = value if isinstance(value, list) else [value]
            texts = {str(v).lower() for v in values
                     if v is not None and v != "" and isinstance(v, str | int | float | bool)}
            if not texts or (accepted is not None and accepted.isdisjoint(texts)):
                return False
        return True


@dataclass(frozen=True)
class FieldMapping:
    name: str
    format: str
    fields: dict[str, str]
    constants: dict[str, Any] = field(default_factory=dict)
    ts_column: str = "@timestamp"
    ts_format: str | None = None
    ts_zone: tzinfo | None = None
    types: dict[str, Cast] = field(default_factory=dict)
    delimiter: str = ","
    quotechar: str = '"'
    description: str = ""
    ignore_case: bool = False
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    """target path -> {lower-case source value -> canonical value} ("*": any other value)."""
    when: tuple[When, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """The source columns the mapping reads (the timestamp column first)."""
        more = [c for w in self.when for c in (*(c for c, _ in w.conditions), *w.fields)]
        seen = dict.fromkeys((self.ts_column, *self.fields, *more))
        return tuple(seen)

    def check_header(self, header: Iterable[str]) -> None:
        """A CSV header must hold every mapped column (a typo would otherwise drop a field silently)."""
        have = {h.lower() for h in header} if self.ignore_case else set(header)
        missing = [c for c in self.columns if (c.lower() if self.ignore_case else c) not in have]
        if missing:
            raise MappingError(f"{self.name}: the file has no column {', '.join(map(repr, missing))}")

    def normalise(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """One CSV row (column -> text) or JSON object -> a validated canonical document."""
        if not isinstance(row, Mapping):
            raise Invalid("not_an_object", f"record is a {type(row).__name__}, not an object")
        if self.ignore_case:
            row = _folded(row)
        doc: dict[str, Any] = {"@timestamp": utc_iso(self._timestamp(_get(row, self.ts_column, self.ignore_case)))}
        kind = next((w for w in self.when if w.holds(row, self.ignore_case)), None)
        fields = self.fields if kind is None or not kind.fields else {**self.fields, **kind.fields}
        for column, path in fields.items():
            value = _get(row, column, self.ignore_case)
            if value is None:
                continue
            cast = self.types.get(path)
            try:
                value = _cast(value, cast, column) if cast else value
            except Invalid as exc:
                raise Invalid(exc.reason, exc.detail, column) from None
            table = self.values.get(path)
            if table is not None:
                value = _mapped(value, table)
                if value is None:
                    continue
            put(doc, path, value)
        constants = self.constants if kind is None else {**self.constants, **kind.constants}
        for path, value in constants.items():
            put(doc, path, copy.deepcopy(value))
        if _get(doc, "custodes.schema_version") is None:
            put(doc, "custodes.schema_version", 1)
        if not _get(doc, "event.id"):
            put(doc, "event.id", stable_id(doc))
        validate(doc)
        return doc

    def _timestamp(self, value: Any) -> datetime:
        column = self.ts_column
        if value is None:
            raise Invalid("missing_timestamp", f"{column} (the timestamp column) is empty or missing", column)
        if self.ts_format in ("epoch", "epoch_ms"):
            if isinstance(value, str) and _FLOAT.match(value.strip()):
                value = float(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise Invalid("wrong_type", f"{column} must be a number of seconds since 1970")
            try:
                return datetime.fromtimestamp(value / 1000 if self.ts_format == "epoch_ms" else value, UTC)
            except (OverflowError, OSError, ValueError):
                raise Invalid("bad_timestamp", f"{column} is out of range") from None
        if not isinstance(value, str):
            raise Invalid("wrong_type", f"{column} must be a date-time string")
        value = value.strip()
        if len(value) > 64:
            raise Invalid("oversized_field", f"{column} is longer than 64 characters")
        try:
            fmt = self.ts_format
            when = datetime.fromisoformat(value) if fmt is None else datetime.strptime(value, fmt)
        except ValueError:
            expected = "ISO 8601" if self.ts_format is None else repr(self.ts_format)
            raise Invalid("bad_timestamp", f"{column} does not match {expected}") from None
        if when.tzinfo is None or when.utcoffset() is None:
            if self.ts_zone is None:
                raise Invalid("timestamp_without_timezone", f"{column} has no offset and the mapping no timezone")
            when = when.replace(tzinfo=self.ts_zone)
        try:
            when.astimezone(UTC)
        except (OverflowError, ValueError):
            raise Invalid("bad_timestamp", f"{column} is out of range") from None
        return when


def load(path: str | Path) -> FieldMapping:
    """Read and check a mapping file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML ({exc})") from None
    return from_dict(data, str(path))


def from_dict(data: Mapping[str, Any], name: str = "<mapping>") -> FieldMapping:
    """Check a decoded mapping (the TOML file's tables) and build the :class:`FieldMapping`."""

    def fail(message: str) -> MappingError:
        return MappingError(f"{name}: {message}")

    def table(key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise fail(f"[{key}] must be a table")
        return value

    def known(where: str, keys: Iterable[str]) -> None:
        allowed = _KEYS[where]
        for key in keys:
            if key not in allowed:
                label = f"in [{where}]" if where else "at the top level"
                raise fail(f"unknown key {key!r} {label} (known: {', '.join(allowed)})")

    if not isinstance(data, Mapping):
        raise fail("a mapping must be a table")
    known("", data)
    fmt = data.get("format")
    if fmt not in FORMATS:
        raise fail(f"format must be one of {', '.join(map(repr, FORMATS))}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description must be a string")

    csv_options = table("csv")
    known("csv", csv_options)
    if csv_options and fmt != "csv":
        raise fail('[csv] applies to format = "csv" only')
    delimiter = csv_options.get("delimiter", ",")
    quotechar = csv_options.get("quotechar", '"')
    for key, value in (("delimiter", delimiter), ("quotechar", quotechar)):
        if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
            raise fail(f"csv.{key} must be one character")
    if delimiter == quotechar:
        raise fail("csv.delimiter and csv.quotechar must differ")

    fields = table("fields")
    for column, target in fields.items():
        if not isinstance(target, str) or not PATH.match(target):
            raise fail(f"fields.{column!r} must be a canonical dotted path such as 'user.id'")
    constants = table("constants")
    for target, value in constants.items():
        if not PATH.match(target):
            raise fail(f"constants: {target!r} is not a canonical dotted path such as 'custodes.activity'")
        if not _plain(value):
            raise fail(f"constants.{target!r} must be a string, number, boolean, array or table")

    timestamp = table("timestamp")
    known("timestamp", timestamp)
    ts_by_field = [c for c, t in fields.items() if t == "@timestamp"]
    if timestamp and ts_by_field:
        raise fail("@timestamp comes from [timestamp] and from [fields]: keep one")
    if "@timestamp" in constants:
        raise fail("@timestamp cannot be a constant")
    if not timestamp and not ts_by_field:
        raise fail('no timestamp: add [timestamp] with column = "<the time column>"')
    ts_column = timestamp.get("column", ts_by_field[0] if ts_by_field else None)
    if not isinstance(ts_column, str) or not ts_column:
        raise fail("timestamp.column must be a column name")
    ts_format = timestamp.get("format")
    if ts_format is not None and (not isinstance(ts_format, str) or not ts_format):
        raise fail("timestamp.format must be a strptime format, 'epoch' or 'epoch_ms'")
    zone_name = timestamp.get("timezone")
    zone: tzinfo | None = None
    if zone_name is not None:
        try:
            zone = UTC if zone_name in ("UTC", "Z") else ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise fail(f"timestamp.timezone {zone_name!r} is not an IANA time zone (e.g. 'Europe/London')") from None
    elif ts_format not in (None, "epoch", "epoch_ms") and "%z" not in ts_format:
        raise fail("timestamp.format has no %z: set timestamp.timezone to the zone the log is written in")

    targets = [t for t in fields.values() if t != "@timestamp"] + list(constants) + ["@timestamp"]
    _check_targets(targets, fail)

    ignore_case = data.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise fail("ignore_case must be true or false")
    when = []
    raw_when = data.get("when", [])
    if not isinstance(raw_when, list):
        raise fail("[[when]] must be an array of tables")
    for i, item in enumerate(raw_when, 1):
        if not isinstance(item, dict):
            raise fail(f"when {i} must be a table")
        known("when", item)
        conditions = item.get("if")
        if not isinstance(conditions, dict) or not conditions:
            raise fail(f"when {i}: if = {{ column = value or [values] }} is required")
        parsed = []
        for column, accepted in conditions.items():
            if isinstance(accepted, str | int) and not isinstance(accepted, bool):
                accepted = [accepted]
            if (not isinstance(accepted, list) or not accepted
                    or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in accepted)):
                raise fail(f"when {i}: if.{column!r} must be a value or a non-empty list of values")
            lowered = frozenset(str(v).lower() for v in accepted)
            parsed.append((column, None if "*" in lowered else lowered))
        when_set = item.get("set", {})
        when_fields = item.get("fields", {})
        if not isinstance(when_set, dict) or not isinstance(when_fields, dict):
            raise fail(f"when {i}: set and fields must be tables")
        for target, value in when_set.items():
            if not PATH.match(target) or not _plain(value):
                raise fail(f"when {i}: set.{target!r} must be a canonical path and a plain value")
        for column, target in when_fields.items():
            if not isinstance(target, str) or not PATH.match(target):
                raise fail(f"when {i}: fields.{column!r} must be a canonical dotted path")
        overridden = set(when_set) | set(when_fields.values())
        _check_targets([t for t in fields.values() if t != "@timestamp" and t not in overridden]
                       + [c for c in constants if c not in overridden]
                       + list(when_set) + list(when_fields.values()) + ["@timestamp"], fail)
        when.append(When(tuple(parsed), dict(when_set), dict(when_fields)))
    values: dict[str, dict[str, Any]] = {}
    for target, table_ in table("values").items():
        if not isinstance(table_, dict) or not all(_plain(v) for v in table_.values()):
            raise fail(f"values.{target!r} must be a table of source value = canonical value")
        values[target] = {str(k).lower(): v for k, v in table_.items()}
    fields = {c: t for c, t in fields.items() if t != "@timestamp"}

    types: dict[str, Cast] = {}
    for target, spec in table("types").items():
        if target not in fields.values():
            raise fail(f"types: {target!r} is not a target of [fields]")
        if isinstance(spec, dict):
            known("types", spec)
            cast = Cast(spec.get("type"), spec.get("separator", ";"))
        else:
            cast = Cast(spec)
        if cast.type not in TYPES:
            raise fail(f"types.{target!r} must be one of {', '.join(map(repr, TYPES))}")
        if not isinstance(cast.separator, str) or not cast.separator:
            raise fail(f"types.{target!r}: separator must be a non-empty string")
        types[target] = cast

    return FieldMapping(
        name=name, format=fmt, fields=fields, constants=dict(constants), ts_column=ts_column,
        ts_format=ts_format, ts_zone=zone, types=types, delimiter=delimiter, quotechar=quotechar,
        description=description, ignore_case=ignore_case, values=values, when=tuple(when),
    )


def _check_targets(targets: list[str], fail: Any) -> None:
    seen: set[str] = set()
    for target in targets:
        if target in seen:
            raise fail(f"{target!r} is set twice (in [fields] or [constants])")
        seen.add(target)
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix in seen:
                raise fail(f"{prefix!r} and {target!r} conflict: one is a value, the other an object")


def _plain(value: Any) -> bool:
    if isinstance(value, str | int | float | bool):
        return not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    return False  # TOML dates and times: write them as strings


_STEP = re.compile(r"^([^.\[\]]+)((?:\[[^\]]*\])*)$")


def _get(row: Mapping[str, Any], column: str, ignore_case: bool = False) -> Any:
    """``row[column]``, or for a path into a JSON record (``a.b``, ``a[0].b``, ``a[*].b``,
    ``Parameters[Name=ForwardTo].Value``) the value there; empty -> None. With ``ignore_case`` the row's
    keys are already lower case (:func:`_folded`) and the column is lowered here."""
    if ignore_case:
        column = column.lower()
    value = row.get(column)
    if value is None and column not in row and ("." in column or "[" in column):
        value = _walk_path(row, column, ignore_case)
    if isinstance(value, list):
        value = [v for v in value if v is not None and v != ""]
        return value or None
    return None if value is None or value == "" else value


def _walk_path(row: Mapping[str, Any], column: str, ignore_case: bool) -> Any:
    nodes: list[Any] = [row]
    many = False
    for part in column.split("."):
        match = _STEP.match(part)
        if match is None:
            return None
        key, selectors = match.group(1), match.group(2)
        nodes = [n.get(key) for n in nodes if isinstance(n, Mapping)]
        for selector in re.findall(r"\[([^\]]*)\]", selectors):
            out: list[Any] = []
            for node in nodes:
                if not isinstance(node, list):
                    continue
                if selector in ("*", ""):
                    out.extend(node)
                    many = True
                elif selector.lstrip("-").isdigit():
                    index = int(selector)
                    if -len(node) <= index < len(node):
                        out.append(node[index])
                elif "=" in selector:
                    name, _, wanted = selector.partition("=")
                    name = name.strip().lower() if ignore_case else name.strip()
                    wanted = wanted.strip().strip("'\"").lower()
                    out.extend(item for item in node if isinstance(item, Mapping)
                               and isinstance(item.get(name), str | int) and str(item.get(name)).lower() == wanted)
            nodes = out
    nodes = [n for n in nodes if n is not None]
    if many:
        return nodes
    return nodes[0] if nodes else None


def _folded(value: Any, depth: int = 0) -> Any:
    if depth > 32:
        return value
    if isinstance(value, Mapping):
        return {str(k).lower(): _folded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_folded(v, depth + 1) for v in value]
    return value


def _mapped(value: Any, table: dict[str, Any]) -> Any:
    """A value through a value map (lists item by item); unlisted -> the "*" entry, else unchanged."""
    if isinstance(value, list):
        return [_mapped(v, table) for v in value]
    if isinstance(value, str | int | float) and not isinstance(value, bool) or isinstance(value, bool):
        key = str(value).lower()
        if key in table:
            return copy.deepcopy(table[key])
        if "*" in table:
            return copy.deepcopy(table["*"])
    return value


def _cast(value: Any, cast: Cast, column: str) -> Any:
    if cast.type == "list":
        if isinstance(value, list):
            return value
        if not isinstance(value, str):
            raise Invalid("wrong_type", f"{column} must be text to split into a list")
        return [item.strip() for item in value.split(cast.separator) if item.strip()]
    if cast.type == "str":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Invalid("wrong_type", f"{column} must be text or a number")
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 40:
            raise Invalid("bad_value", f"{column} is too long for a number")
        if cast.type == "int" and _INT.match(text):
            return int(text)
        if cast.type == "float" and _FLOAT.match(text):
            number = float(text)
            if math.isfinite(number):
                return number
        raise Invalid("bad_value", f"{column} is not {'an integer' if cast.type == 'int' else 'a number'}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("wrong_type", f"{column} must be {'an integer' if cast.type == 'int' else 'a number'}")
    if cast.type == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise Invalid("bad_value", f"{column} is not an integer")
            return int(value)
        return value
    return float(value)
