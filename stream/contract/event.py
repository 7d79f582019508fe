"""The canonical audit event, version 1, as msgspec models derived from :class:`detectors.event.Event`.

:class:`~detectors.event.Event` says once, in the annotations of its attributes (``at(path, …)``), which
field of the canonical document each attribute is read from and its constraints. From that table this
module derives:

- :data:`FIELDS`, the table itself (attribute, path, how it is read, limit), which the field-by-field
  reading in stream.contract.codec walks to name the first problem of an invalid document;
- :func:`models`, the msgspec Structs of the document (nested objects, one per ECS object; constraints
  via ``msgspec.Meta``; string limits from :class:`Limits`), which decode and validate a document in one
  call, and the JSON Schema (stream.contract.json_schema);
- :func:`builder`, a function generated from the same table that turns a decoded model into an Event.
"""

from __future__ import annotations

import hashlib
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

import msgspec
import orjson
from msgspec import Meta

from detectors.event import ACTIVITY_KINDS, FIELD_META, Event

from .limits import Limits

SCHEMA_VERSION = 1

TIMESTAMP_MAX_CHARS = 64


@dataclass(frozen=True)
class Field:
    """One attribute of Event and the document field it is read from."""

    attr: str
    path: str
    read: str
    """``value`` (as it is), ``first`` (of a keyword list), ``extension``, ``count`` (of a list of
    objects), or one read by hand in stream.contract.codec: ``id``, ``timestamp``, ``user``,
    ``activity``, ``location``, ``text``, ``objects``."""
    base: Any
    """The attribute's type without None and msgspec.Meta: str, int, float, a Literal, a tuple type."""
    metas: tuple[Meta, ...]
    """The msgspec constraints on the value (``ge``, ``le``, ``max_length``), without the ``at`` one."""
    limit: int | None
    """A fixed string length; None: the settings' ``max_string_chars`` (``max_content_chars`` for text)."""
    evidence: bool
    description: str | None

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("."))

    @property
    def choices(self) -> tuple[Any, ...]:
        return typing.get_args(self.base) if typing.get_origin(self.base) is Literal else ()

    @property
    def is_list(self) -> bool:
        return typing.get_origin(self.base) is tuple


def _unwrap(hint: Any) -> tuple[Any, tuple[Meta, ...]]:
    """``Annotated[T, Meta…] | None`` -> (T, the Metas)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    metas: list[Meta] = []
    while typing.get_origin(hint) is Annotated:
        args = typing.get_args(hint)
        metas.extend(m for m in args[1:] if isinstance(m, Meta))
        hint = args[0]
    return hint, tuple(metas)


_CONSTRAINTS = ("gt", "ge", "lt", "le", "multiple_of", "pattern", "min_length", "max_length")


def _fields() -> tuple[Field, ...]:
    """FIELDS from Event's annotations: the ``at`` Meta of each attribute (detectors.event.FIELD_META)
    says where it comes from; its constraints and those of the type (``Count``) are kept as msgspec.Meta."""
    hints = typing.get_type_hints(Event, include_extras=True)
    out = []
    for name, where in FIELD_META.items():
        base, metas = _unwrap(hints[name])
        constraints = {c: getattr(where, c) for c in _CONSTRAINTS if getattr(where, c) is not None}
        metas = tuple(m for m in metas if m is not where) + ((Meta(**constraints),) if constraints else ())
        extra = where.extra
        out.append(Field(name, extra["path"], extra["read"], base, metas, extra["limit"], extra["evidence"],
                         where.description))
    return tuple(out)


FIELDS: tuple[Field, ...] = _fields()
"""Every attribute of Event read from the document, in Event's order."""
BY_ATTR = {f.attr: f for f in FIELDS}

FIELD_PATHS: tuple[str, ...] = (*(f.path for f in FIELDS), "custodes.schema_version")
"""Every field validate() reads (the JSON Schema documents each of them)."""


# ---- the msgspec models of the document -------------------------------------------------------------

OPEN_ONLY = frozenset({"objects", "count"})
"""Fields whose values are objects that may hold anything: a document with them is not closed."""


def _leaf_type(f: Field, limits: Limits, numbers_as_ids: bool) -> Any:
    """The msgspec type of the value at ``f.path`` (without null)."""
    s = limits.max_string_chars
    if f.read == "timestamp":
        return Annotated[str, Meta(max_length=TIMESTAMP_MAX_CHARS, pattern=_TIMESTAMP_PATTERN if numbers_as_ids
                                   else None)]
    if f.read == "activity":
        return Literal[(*sorted(ACTIVITY_KINDS), "")]
    if f.read == "text":
        return Annotated[str, Meta(max_length=limits.max_content_chars)]
    if f.read in ("objects", "count"):
        most = limits.max_list_items if f.read == "count" else None
        metas = (*f.metas, *((Meta(max_length=most),) if most is not None else ()))
        return Annotated[(tuple[dict[str, Any], ...], *metas)]
    if f.choices:
        return f.base
    if f.base is str or f.is_list:
        text: Any = Annotated[str, Meta(max_length=f.limit or s)]
        one = text | int if numbers_as_ids and f.limit is None else text  # no JSON integer exceeds 64 bits
        if f.is_list or f.read == "first":  # one string, or a list of them (a single number is refused)
            return text | Annotated[tuple[one, ...], Meta(max_length=limits.max_list_items)]
        return one
    return Annotated[(f.base, *f.metas)] if f.metas else f.base


_TIMESTAMP_PATTERN = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8}|[0-9]{4}-W[0-9]{2}(-[1-7])?|[0-9]{4}W[0-9]{2}[1-7]?)[\s\S]"
    r"([0-9]{2}(:[0-9]{2}(:[0-9]{2}([.,][0-9]*)?)?)?|[0-9]{2}([0-9]{2}([0-9]{2}([.,][0-9]*)?)?)?)"
    r"(Z|[+-]([0-9]{2}(:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?)?|[0-9]{2}([0-9]{2}([0-9]{2}([.,][0-9]+)?)?)?))(?![\s\S])"
)
r"""ISO 8601 date-time with a UTC offset as Python 3.11's datetime.fromisoformat reads it: calendar
(extended or basic) or week dates, any single separator character, hh[:mm[:ss[.f…]]], ``Z`` or
±hh[:mm[:ss[.ffffff]]]. Syntax only, for the JSON Schema: the decoder checks the calendar and the offset
with fromisoformat itself. The end is written (?![\s\S]) because $ also matches before a final new line
in some regex engines."""


def _name(path: str) -> str:
    """The model of the object at ``path`` (``object.custodes.record``): its name in the JSON Schema."""
    return f"object.{path}" if path else "AuditEvent"


@lru_cache(maxsize=16)
def models(limits: Limits, closed: bool, numbers_as_ids: bool = False) -> type[msgspec.Struct]:
    """The document as msgspec Structs: one per ECS object on the way to a field, every field optional
    (null allowed) but ``@timestamp``.

    ``closed``: unknown fields are refused (``forbid_unknown_fields``) and ``custodes.media`` and
    ``email.attachments`` (objects holding anything) are left out, so a document the model accepts has
    no field without an Event attribute, no dotted key and nests at most 4 levels. Otherwise other fields
    are allowed and ignored. ``numbers_as_ids``: identifiers may be JSON integers, as validate() accepts
    them (the JSON Schema's model; the decoder leaves such documents to the field-by-field reading).
    """
    tree: dict[str, Any] = {}
    for f in FIELDS:
        if closed and f.read in OPEN_ONLY:
            continue
        node = tree
        for part in f.parts[:-1]:
            node = node.setdefault(part, {})
        node[f.parts[-1]] = f
    tree["custodes"]["schema_version"] = "schema_version"

    def struct(path: str, node: dict[str, Any]) -> type[msgspec.Struct]:
        members = []
        for key, sub in node.items():
            attr = key.lstrip("@")
            if isinstance(sub, dict):
                members.append((attr, struct(f"{path}.{key}" if path else key, sub) | None,
                                msgspec.field(default=None, name=key if attr != key else None)))
            elif sub == "schema_version":
                members.append((attr, Annotated[Literal[SCHEMA_VERSION], Meta(
                    description="The contract's version; absent means 1.")] | msgspec.UnsetType,
                    msgspec.field(default=msgspec.UNSET)))
            else:
                leaf = _leaf_type(sub, limits, numbers_as_ids)
                if sub.description:
                    leaf = Annotated[leaf, Meta(description=sub.description)]
                if sub.read == "timestamp":
                    members.append((attr, leaf, msgspec.field(name=key)))
                else:
                    members.append((attr, leaf | None, msgspec.field(default=None, name=key if attr != key
                                                                      else None)))
        members.sort(key=lambda m: m[2].default is msgspec.NODEFAULT and m[2].default_factory is msgspec.NODEFAULT,
                     reverse=True)  # required first
        return msgspec.defstruct(_name(path), members, forbid_unknown_fields=closed, gc=False,
                                 module=__name__)

    return struct("", tree)


# ---- from a decoded model to an Event -------------------------------------------------------------

class Unusual(Exception):
    """A document the model decoded that still needs the field-by-field reading (a whitespace user id, a
    timestamp without a timezone, lat without lon …), which finds its problem or reads it."""


@lru_cache(maxsize=16)
def builder(closed: bool) -> Any:
    """``build(model, doc, raw) -> Event`` for the models of :func:`models`, generated from :data:`FIELDS`.

    Raises :class:`Unusual` where the model alone cannot decide (see there)."""
    lines = ["def build(m, doc, raw):"]
    objects: dict[tuple[str, ...], str] = {(): "m"}

    def node(parts: tuple[str, ...]) -> str:
        if parts not in objects:
            parent = node(parts[:-1])
            name = objects[parts] = "n_" + "_".join(parts)
            lines.append(f"    {name} = {parent}.{parts[-1]}" + (f" if {parent} is not None else None" if parent != "m"
                                                                  else ""))
        return objects[parts]

    args = []
    for f in FIELDS:
        if closed and f.read in OPEN_ONLY:
            args.append("()" if f.read == "objects" else "None")
            continue
        parent = node(f.parts[:-1])
        key = f.parts[-1].lstrip("@")
        v = f"v_{f.attr}"
        lines.append(f"    {v} = {parent}.{key}" + (f" if {parent} is not None else None" if parent != "m" else ""))
        if f.read == "id":
            lines.append(f"    if not {v}:")
            lines.append(f"        {v} = _derived_id(doc, raw)")
        elif f.read == "timestamp":  # inline: this runs for every event
            lines.append("    try:")
            lines.append(f"        when = _fromisoformat({v})")
            lines.append("    except ValueError:")
            lines.append("        raise Unusual from None")
            lines.append("    if when.tzinfo is None:  # else a datetime.timezone, whose utcoffset() is never None")
            lines.append("        raise Unusual")
            lines.append(f"    {v} = when.timestamp()")
        elif f.read == "user":
            lines.append(f"    if not {v} or {v}.isspace():")
            lines.append("        raise Unusual")
        elif f.read == "activity":
            lines.append(f"    {v} = {v} or 'other'")
        elif f.read == "extension":
            lines.append(f"    if {v} is not None:")
            lines.append(f"        {v} = {v}.lstrip('.').lower() or None")
        elif f.read == "count":
            lines.append(f"    if {v} is not None:")
            lines.append(f"        {v} = len({v})")
        elif f.read == "objects" or f.is_list:
            lines.append(f"    if {v} is None:")
            lines.append(f"        {v} = ()")
            if f.is_list:
                lines.append(f"    elif type({v}) is str:")
                lines.append(f"        {v} = ({v},)")
        elif f.read == "first":
            lines.append(f"    if {v} is not None and type({v}) is not str:")
            lines.append(f"        {v} = {v}[0] if {v} else None")
        args.append(v)
    lines.append("    if (v_lat is None) != (v_lon is None):")
    lines.append("        raise Unusual")
    args.append("doc")
    args.append("None")  # raw
    lines.append(f"    return Event({', '.join(args)})")
    namespace = {"Event": Event, "Unusual": Unusual, "_derived_id": derived_id, "_fromisoformat": _fromisoformat}
    exec("\n".join(lines), namespace)  # noqa: S102 - source generated above from FIELDS only
    build = namespace["build"]
    build.source = "\n".join(lines)
    return build


_fromisoformat = datetime.fromisoformat
_blake2b = hashlib.blake2b


def derived_id(doc: dict[str, Any] | None, raw: bytes | None) -> str:
    """The id of an event without ``event.id``: from its bytes, else from its document with keys sorted.
    Unusual when the document cannot be encoded (an integer beyond 64 bits, built in Python)."""
    if raw is not None:
        return "sha-" + _blake2b(raw, digest_size=12).hexdigest()
    try:
        basis = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        raise Unusual from None
    return "sha-" + _blake2b(basis, digest_size=12).hexdigest()
