"""The JSON Schema of the canonical audit event (``schemas/audit-event-1.json``), generated.

``msgspec.json.schema`` writes the document's models (stream.contract.event.models, derived from
detectors.event.Event) as they are; :func:`generate` then adds what validate() accepts beyond them and
JSON Schema can still say: every field also as a dotted key at every level (ECS), ``source`` and
``source.geo`` ignored when not objects, a user named by user.id or user.name, lat and lon together,
and the nesting limit. The checked-in file is the output of this module (a test holds them equal):

    python -m stream.contract.json_schema --write      # after changing detectors.event.Event
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import msgspec
import orjson

from .event import SCHEMA_VERSION, models
from .limits import DEFAULT_LIMITS, Limits

PATH = Path(__file__).resolve().parent / "schemas" / f"audit-event-{SCHEMA_VERSION}.json"

IGNORED_WHEN_NOT_OBJECTS = ("object.source", "object.source.geo")
"""validate() ignores ``source`` and ``source.geo`` when they are not objects (ECS shippers put strings there)."""

DESCRIPTION = (
    "One audited action by a member of staff, as stream.contract.codec.validate() accepts it; generated "
    "from detectors.event.Event by stream/contract/json_schema.py (do not edit). Field names follow the "
    "Elastic Common Schema; what ECS lacks is under custodes.*. Every field may be given as nested objects "
    "({\"user\": {\"id\": …}}), as dotted keys at any level ({\"user.id\": …}, {\"source\": {\"geo.location\": "
    "{\"lat\": …}}}): validate() expands dotted keys into nested objects first, merging them with the objects "
    "already there. Every object on the way to a field validate() reads must be an object (or null) except "
    "source and source.geo, where anything else is ignored. Give each field once: when a field or object "
    "appears both dotted and nested with different values, the dotted one wins, a precedence JSON Schema "
    "cannot express, so this schema checks every form. Other fields are allowed and kept. Integers are JSON "
    "numbers without a fraction or exponent: validate() rejects 1.0 and true where an integer is expected, "
    "which JSON Schema's data model cannot tell from 1. Limits (stream.contract.limits.Limits defaults): the "
    "encoded event at most {max_event_bytes} bytes (checked on the bytes, not expressible here), strings "
    "{max_string_chars} characters, message {max_content_chars}, lists {max_list_items} items, media 100, "
    "nesting {max_depth} levels. Identifier strings (every string field except message) must not hold a "
    "control character (C0 including NUL, DEL, C1: rejected as control_character, a check this schema does "
    "not repeat), and a user.id of whitespace only is missing (missing_user); message is free text and may "
    "hold any JSON string. Rejections carry a reason from stream.contract.reasons.REASONS."
)

EXAMPLES: list[dict[str, Any]] = [
    {"@timestamp": "2024-03-05T14:03:22Z", "event": {"id": "A-1001", "action": "VIEW"},
     "user": {"id": "PC4412", "name": "Alex Morgan"},
     "custodes": {"schema_version": 1, "activity": "record_access", "record": {"ids": ["P/123", "P/456"]},
                  "dataset": {"name": "person-records", "sensitivity": "high"}}},
    {"@timestamp": "2024-03-05T14:03:22+00:00", "user.id": "PC4412", "custodes.activity": "message",
     "custodes.application.id": "com.whatsapp", "message": "hello",
     "source.geo.location": {"lat": 51.5072, "lon": -0.1276}},
    {"@timestamp": "2026-11-30T10:15:00Z", "user": {"id": "pc-1001"},
     "custodes": {"activity": "share", "object": {"id": "1Xk9aDocId"}, "share": {"visibility": "anyone"},
                  "identity": {"alias": "a.morgan@force.example"}},
     "file": {"name": "Rota.xlsx", "extension": "xlsx"}},
    {"@timestamp": "2026-11-30T10:20:00Z", "user.id": "pc-1001", "custodes.activity": "mail_forward",
     "email.to.address": ["someone@gmail.com"], "email.attachments": [{"file": {"name": "x.pdf"}}]},
]


def _describe(limits: Limits) -> str:
    text = DESCRIPTION
    for name, value in vars(limits).items():
        text = text.replace("{" + name + "}", str(value))
    return text


def _object_ref(prop: dict[str, Any]) -> str | None:
    """The name of the object model a property holds (``{"anyOf": [{"$ref": …}, {"type": "null"}]}``)."""
    for option in prop.get("anyOf", ()):
        ref = option.get("$ref", "")
        if ref.startswith("#/$defs/object."):
            return ref.removeprefix("#/$defs/")
    return None


def _descendants(props: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """Every field and object under the object ``name`` by its dotted key relative to it (``record``,
    ``record.ids``); ``props``: each object model's own properties."""
    out: dict[str, Any] = {}
    for key, prop in props[name].items():
        out[key] = prop
        sub = _object_ref(prop)
        if sub is not None:
            out.update({f"{key}.{rest}": leaf for rest, leaf in _descendants(props, sub).items()})
    return out


def _forms(path: str, leaf: dict[str, Any]) -> list[dict[str, Any]]:
    """Schemas requiring the field at ``path`` to match ``leaf``, one per way of writing it (each run of
    parts nested or as one dotted key)."""
    parts = path.split(".")
    out = []
    for mask in range(2 ** (len(parts) - 1)):  # bit i set: an object boundary after part i
        keys, start = [], 0
        for i in range(len(parts) - 1):
            if mask >> i & 1:
                keys.append(".".join(parts[start:i + 1]))
                start = i + 1
        keys.append(".".join(parts[start:]))
        schema = leaf
        for key in reversed(keys):
            schema = {"type": "object", "required": [key], "properties": {key: schema}}
        out.append(schema)
    return sorted(out, key=orjson.dumps)


def generate(limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The JSON Schema of the audit event under ``limits`` (a JSON-ready dict)."""
    base = msgspec.json.schema(models(limits, False, True))
    defs: dict[str, Any] = base["$defs"]
    root = defs.pop("AuditEvent")
    for name in IGNORED_WHEN_NOT_OBJECTS:
        defs[name].pop("type")
        defs[name]["description"] = f"The {name.removeprefix('object.')} object. Not an object: ignored, as if absent."
    for name, model in defs.items():
        model.pop("title", None)
        if not model.get("required", True):
            model.pop("required")
        model.setdefault("description", f"The {name.removeprefix('object.')} object; anything but an object or null "
                         "is rejected.")
    # dotted keys: each field (and object) also as one key relative to every object above it
    own = {name: dict(model["properties"]) for name, model in defs.items()}
    for model in (root, *defs.values()):
        for key, prop in list(model["properties"].items()):
            sub = _object_ref(prop)
            if sub is not None:
                for rest, leaf in _descendants(own, sub).items():
                    model["properties"][f"{key}.{rest}"] = copy.deepcopy(leaf)
    for name in IGNORED_WHEN_NOT_OBJECTS:  # an ignored object is neither an object nor null: no type check
        for model in (root, *defs.values()):
            for prop in model["properties"].values():
                if _object_ref(prop) == name:
                    prop.pop("anyOf")
                    prop["$ref"] = f"#/$defs/{name}"
    user_ref = {"anyOf": [{"type": "string", "minLength": 1, "pattern": r"\S"}, {"type": "integer"}]}
    defs["has_user"] = {"anyOf": [*_forms("user.id", {"$ref": "#/$defs/user_ref"}),
                                  *_forms("user.name", {"$ref": "#/$defs/user_ref"})]}
    defs["user_ref"] = {"description": "A user.id/user.name that names the user: a string with a character other "
                        "than white space, or an integer.", **user_ref}
    defs["has_lat"] = {"anyOf": _forms("source.geo.location.lat", {"type": "number"})}
    defs["has_lon"] = {"anyOf": _forms("source.geo.location.lon", {"type": "number"})}
    for level in range(1, limits.max_depth + 1):
        defs[f"depth.{level}"] = {"additionalProperties": {"$ref": f"#/$defs/depth.{level + 1}"},
                                  "items": {"$ref": f"#/$defs/depth.{level + 1}"}}
    defs["depth.1"]["description"] = (f"Objects and arrays nest at most {limits.max_depth} levels (the document "
                                      "is level 1).")
    defs[f"depth.{limits.max_depth + 1}"] = {"not": {"type": ["object", "array"]}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://custodes.invalid/schemas/audit-event-{SCHEMA_VERSION}.json",
        "title": f"Custodes canonical audit event, version {SCHEMA_VERSION}",
        "description": _describe(limits),
        "type": "object",
        "required": root["required"],
        "properties": root["properties"],
        "allOf": [
            {"$ref": "#/$defs/depth.1"},
            {"$ref": "#/$defs/has_user"},
            {"if": {"$ref": "#/$defs/has_lat"}, "then": {"$ref": "#/$defs/has_lon"}},
            {"if": {"$ref": "#/$defs/has_lon"}, "then": {"$ref": "#/$defs/has_lat"}},
        ],
        "examples": EXAMPLES,
        "$defs": dict(sorted(defs.items())),
    }


def text(limits: Limits = DEFAULT_LIMITS) -> str:
    """The schema file's text: sorted keys, two-space indent, a final new line."""
    return orjson.dumps(generate(limits), option=orjson.OPT_INDENT_2).decode() + "\n"


def main(argv: list[str] | None = None) -> int:
    """``--write``: regenerate the checked-in file; ``--check``: exit 1 when it differs; else print it."""
    args = sys.argv[1:] if argv is None else argv
    if "--write" in args:
        PATH.write_text(text())
        return 0
    if "--check" in args:
        if PATH.read_text() != text():
            print(f"{PATH} is out of date: python -m stream.contract.json_schema --write", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
