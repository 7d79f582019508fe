"""The activity table: ``custodes.activity`` from ECS categorisation when a source does not say it.

Beats, Elastic Agent and most shippers write ECS events that say what happened in ``event.category``,
``event.type``, ``event.action`` (and which integration wrote them in ``event.dataset``/``event.module``)
but carry no ``custodes.activity``. The table in ``config/activities.toml`` (a declared table, not code)
turns those into an activity kind: its ``[[rule]]`` s are tried in order and the first whose conditions
all hold gives the activity. A condition is a dotted field path and a list of accepted values; a field
holding a list (ECS allows arrays: ``event.category``, ``event.type``, auditd's ``event.action``)
matches when any item does. Values compare case-insensitively; ``"*"`` accepts any non-empty value.

An event no rule matches stays ``other`` and is *unclassified*: counted per dataset (the metric
``custodes_events_unclassified_total``, replay and ingest summaries) so a site sees what it does not
yet cover. A rule may say ``activity = "other"`` to declare a combination known and deliberately
ignored (it is then not counted as unclassified).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from detectors.event import ACTIVITY_KINDS
from stream.contract.schema import lookup

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "config" / "activities.toml"
UNKNOWN_DATASET = "unknown"
"""The dataset label of an event without ``event.dataset`` (nor ``event.module``)."""
OTHER_DATASET = "other"
"""The dataset label of an event whose dataset the table does not name (keeps the label bounded)."""
_RULE_KEYS = ("activity", "name")


class TableError(ValueError):
    """An activity table that cannot be used; the message names the file and the rule."""


@dataclass(frozen=True, slots=True)
class Rule:
    activity: str
    conditions: tuple[tuple[str, frozenset[str] | None], ...]
    """(field path, accepted lower-case values; None = any non-empty value)."""
    name: str = ""
    parts: tuple[tuple[str, ...], ...] = ()
    """Each condition's path split at the dots (computed once)."""

    def matches(self, doc: Mapping[str, Any]) -> bool:
        for (path, accepted), parts in zip(self.conditions, self.parts, strict=True):
            values = _values(_field(doc, path, parts))
            if not values:
                return False
            if accepted is not None and accepted.isdisjoint(values):
                return False
        return True


def _field(doc: Mapping[str, Any], path: str, parts: tuple[str, ...]) -> Any:
    """``doc``'s value at ``path``: nested objects (as the validator leaves them), or an ECS dotted key
    at the top level (``{"event.action": …}``) in a document read from a file."""
    node: Any = doc
    for part in parts:
        if not isinstance(node, dict):
            node = None
            break
        node = node.get(part)
        if node is None:
            break
    if node is None and len(parts) > 1:
        return lookup(doc, path) if _has_dotted_key(doc) else None
    return node


def _has_dotted_key(doc: Mapping[str, Any]) -> bool:
    return any("." in key for key in doc)


@dataclass(frozen=True)
class ActivityTable:
    rules: tuple[Rule, ...]
    datasets: frozenset[str]
    """Datasets the table knows (named by a rule or in ``[datasets] known``): the metric's label values."""
    name: str = "<table>"

    @cached_property
    def _index(self) -> tuple[dict[str, tuple[str, ...]], dict[str, dict[str, tuple[int, ...]]], tuple[int, ...]]:
        """Rules by the value of their first condition that names values (path -> value -> rule numbers),
        and the rules without one: classify tests only the rules an event's values can match."""
        index: dict[str, dict[str, list[int]]] = {}
        always: list[int] = []
        for i, rule in enumerate(self.rules):
            key = next(((path, accepted) for path, accepted in rule.conditions if accepted is not None), None)
            if key is None:
                always.append(i)
                continue
            by_value = index.setdefault(key[0], {})
            for value in key[1]:
                by_value.setdefault(value, []).append(i)
        parts = {path: tuple(path.split(".")) for path in index}
        return parts, {p: {v: tuple(ids) for v, ids in d.items()} for p, d in index.items()}, tuple(always)

    def classify(self, doc: Mapping[str, Any]) -> str | None:
        """The activity of the first matching rule, or None when no rule matches (unclassified). Each
        field is read once per event, and only the rules its values can match are tested."""
        key_parts, index, always = self._index
        seen: dict[str, frozenset[str] | set[str]] = {}
        candidates = set(always)
        for path, by_value in index.items():
            values = seen[path] = _values(_field(doc, path, key_parts[path]))
            for value in values:
                candidates.update(by_value.get(value, ()))
        for i in sorted(candidates):
            rule = self.rules[i]
            for (path, accepted), parts in zip(rule.conditions, rule.parts, strict=True):
                values = seen.get(path)
                if values is None:
                    values = seen[path] = _values(_field(doc, path, parts))
                if not values or accepted is not None and accepted.isdisjoint(values):
                    break
            else:
                return rule.activity
        return None

    def dataset_label(self, doc: Mapping[str, Any]) -> str:
        """A bounded label for the event's source: its ``event.dataset`` (else ``event.module``) when
        the table knows it, ``other`` when it does not, ``unknown`` when the event names none."""
        for path in ("event.dataset", "event.module", "data_stream.dataset"):
            value = lookup(doc, path)
            if isinstance(value, str) and value:
                value = value.lower()
                return value if value in self.datasets else OTHER_DATASET
        return UNKNOWN_DATASET


def load(path: str | Path = DEFAULT_TABLE) -> ActivityTable:
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise TableError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise TableError(f"{path}: cannot be read ({exc.strerror})") from None
    return from_dict(data, str(path))


def from_dict(data: Mapping[str, Any], name: str = "<table>") -> ActivityTable:
    unknown = set(data) - {"rule", "datasets"}
    if unknown:
        raise TableError(f"{name}: unknown key(s) {sorted(unknown)} (known: rule, datasets)")
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise TableError(f"{name}: [[rule]] must be an array of tables")
    rules = []
    datasets: set[str] = set()
    for i, raw in enumerate(raw_rules, 1):
        where = f"{name}: rule {i}"
        if not isinstance(raw, dict):
            raise TableError(f"{where} must be a table")
        activity = raw.get("activity")
        if activity not in ACTIVITY_KINDS:
            raise TableError(f"{where}: activity must be one of {', '.join(sorted(ACTIVITY_KINDS))}")
        rule_name = raw.get("name", "")
        if not isinstance(rule_name, str):
            raise TableError(f"{where}: name must be a string")
        conditions = []
        for path, accepted in raw.items():
            if path in _RULE_KEYS:
                continue
            if isinstance(accepted, str | int) and not isinstance(accepted, bool):
                accepted = [accepted]
            if not isinstance(accepted, list) or not accepted or not all(
                    isinstance(v, str | int) and not isinstance(v, bool) for v in accepted):
                raise TableError(f"{where}: {path!r} must be a value or a non-empty list of values")
            values = frozenset(str(v).lower() for v in accepted)
            conditions.append((path, None if "*" in values else values))
            if path in ("event.dataset", "event.module") and "*" not in values:
                datasets |= values
        if not conditions:
            raise TableError(f"{where}: a rule needs at least one condition")
        rules.append(Rule(activity, tuple(conditions), rule_name, tuple(tuple(p.split(".")) for p, _ in conditions)))
    extra = data.get("datasets", {})
    if not isinstance(extra, dict) or set(extra) - {"known"}:
        raise TableError(f"{name}: [datasets] holds only known = [..]")
    known = extra.get("known", [])
    if not isinstance(known, list) or not all(isinstance(v, str) for v in known):
        raise TableError(f"{name}: datasets.known must be a list of strings")
    datasets |= {v.lower() for v in known}
    return ActivityTable(tuple(rules), frozenset(datasets), name)


def _values(value: Any) -> set[str]:
    """A field's value(s) as lower-case strings (a list's items; numbers as text; nothing for empties)."""
    if value is None or isinstance(value, bool | dict):
        return set()
    if isinstance(value, list):
        return {str(v).lower() for v in value
                if isinstance(v, str | int) and not isinstance(v, bool) and str(v)}
    if isinstance(value, str | int | float):
        text = str(value)
        return {text.lower()} if text else set()
    return set()


_DEFAULT: ActivityTable | None = None


def default_table() -> ActivityTable:
    """The shipped table (config/activities.toml), loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load(DEFAULT_TABLE)
    return _DEFAULT
