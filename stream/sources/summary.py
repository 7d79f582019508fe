"""What Custodes made of a log: the summary ``custodes replay`` and ``custodes ingest`` print.

Events by source (``event.dataset``, else ``event.module``) and by activity, so a log that is "all
other" shows at once; events no rule of the activity table classified, per dataset; and for dead
letters, the first few places (file:line and field path) per reason, so a refused record can be found.
Counts and places only: never a user id or a value from the record.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stream.contract.schema import lookup

EXAMPLES_PER_REASON = 5
NO_SOURCE = "(no event.dataset)"


@dataclass
class Summary:
    by_source: Counter[str] = field(default_factory=Counter)
    by_activity: Counter[str] = field(default_factory=Counter)
    unclassified: Counter[str] = field(default_factory=Counter)
    """Events without custodes.activity that no rule of the activity table matched, per dataset label."""
    unknown_identities: Counter[str] = field(default_factory=Counter)
    """Events whose user id the loaded staff directory does not know (neither a person id nor an alias),
    per source label: processed under the id as given."""
    examples: dict[str, list[str]] = field(default_factory=dict)
    """reason -> up to EXAMPLES_PER_REASON places ("file:line at field.path")."""

    def event(self, doc: dict[str, Any] | None, kind: str) -> None:
        self.by_source[source_of(doc)] += 1
        self.by_activity[kind] += 1

    def dead(self, reason: str, where: str, field_path: str | None) -> None:
        places = self.examples.setdefault(reason, [])
        if len(places) < EXAMPLES_PER_REASON:
            places.append(f"{where} at {field_path}" if field_path else where)

    def lines(self, dead_lettered: Counter[str] | dict[str, int] | None = None) -> list[str]:
        out = []
        if self.by_source:
            out.append("  by source:   " + _counts(self.by_source))
        if self.by_activity:
            out.append("  by activity: " + _counts(self.by_activity))
        if self.unclassified:
            out.append("  not classified by the activity table (kept as other), by dataset: "
                       + _counts(self.unclassified))
        if self.unknown_identities:
            out.append("  user ids not in the staff directory (processed as given; add them as aliases), "
                       "by source: " + _counts(self.unknown_identities))
        for reason, n in sorted((dead_lettered or {}).items()):
            places = self.examples.get(reason)
            more = f"; first at {', '.join(places)}" if places else ""
            out.append(f"  dead letter {reason}: {n:,}{more}")
        return out


def source_of(doc: dict[str, Any] | None) -> str:
    if not doc:
        return NO_SOURCE
    for path in ("event.dataset", "event.module"):
        value = lookup(doc, path)
        if isinstance(value, str) and value:
            return value[:64]
    return NO_SOURCE


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in counter.most_common())
