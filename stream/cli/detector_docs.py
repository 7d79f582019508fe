"""The generated parts of docs/detectors.md: the catalogue (each detector's ``summary``) and, per
detector, its knobs (the fields of its ``Config`` with their defaults and attribute docstrings).

``custodes detectors --docs docs/detectors.md`` rewrites what lies between the markers
``<!-- generated: catalogue -->`` / ``<!-- generated: knobs <id> -->`` and ``<!-- end generated -->``;
the prose around them is written by hand. tests/stream/cli/test_detector_docs.py checks the file is
up to date, so a changed default or a new knob cannot leave the docs behind."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
from collections.abc import Sequence
from typing import Any

from detectors.base import Detector
from detectors.registry import CATALOG

MARKER = re.compile(r"<!-- generated: (catalogue|knobs [a-z_]+) -->\n.*?<!-- end generated -->", re.S)


SHARED = {
    "enabled": "Run this detector (false: it sees no events and keeps no state).",
    "grace_s": "How late (event time, seconds) an event may arrive behind the newest one seen and still count.",
    "suppress_s": "Hits within this many seconds of an alert's first fold into it (its count grows) instead of "
                  "raising a new alert.",
    "window_s": "The sliding window of event time the counts are taken over (seconds).",
    "bucket_s": "Counts are kept in buckets of this many seconds; the window's edge is exact to one bucket.",
    "kinds": "The activities (`custodes.activity`) this detector looks at.",
    "internal_domains": "Mail and web domains inside the organisation (the site's `org_domains` are added).",
    "timezone": "The IANA time zone hours of the day and days are read in.",
    "weights": "Risk points of each signal reason for the person's risk (person_risk); 0 silences a reason.",
}
"""Meanings of knobs many detectors share, shown where a detector's Config gives no docstring of its own."""


def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string literal right after a field) of a dataclass and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, [*body[1:], None], strict=True):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(
                    after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
                docs[node.target.id] = " ".join(inspect.cleandoc(after.value.value).split())
    return docs


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "(none)"
    return repr(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("``", "`")


def catalogue(classes: Sequence[type[Detector]] = CATALOG) -> str:
    rows = ["| detector | catches | knobs (`[detectors.<id>]`) |", "|---|---|---|"]
    for cls in classes:
        knobs = [f.name for f in dataclasses.fields(cls.Config) if f.name != "enabled"]
        rows.append(f"| [{cls.id}](#knobs-{cls.id}) | {_cell(cls.summary)} | "
                    f"{', '.join(f'`{k}`' for k in knobs)} |")
    return "\n".join(rows)


def knobs(cls: type[Detector]) -> str:
    docs = field_docs(cls.Config)
    rows = [f"Knobs of `{cls.id}` (v{cls.version}), `[detectors.{cls.id}]` in config/custodes.toml:", "",
            "| knob | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(cls.Config):
        meaning = docs.get(f.name) or SHARED.get(f.name, "")
        rows.append(f"| `{f.name}` | `{_cell(_toml(_default(f)))}` | {_cell(meaning)} |")
    return "\n".join(rows)


def render(text: str, classes: Sequence[type[Detector]] = CATALOG) -> str:
    """``text`` with every generated part rewritten from the detectors' code."""
    by_id = {cls.id: cls for cls in classes}

    def part(m: re.Match[str]) -> str:
        what = m.group(1)
        if what == "catalogue":
            body = catalogue(classes)
        else:
            cls = by_id.get(what.split(" ", 1)[1])
            if cls is None:
                raise ValueError(f"docs name a detector the catalogue does not hold: {what}")
            body = knobs(cls)
        return f"<!-- generated: {what} -->\n{body}\n<!-- end generated -->"

    return MARKER.sub(part, text)


def missing(text: str, classes: Sequence[type[Detector]] = CATALOG) -> list[str]:
    """Detectors whose knobs the docs do not show (every detector needs a generated knobs part)."""
    return [cls.id for cls in classes if f"<!-- generated: knobs {cls.id} -->" not in text]
