"""What a Sigma alert says: its title, explanation and facts (rule id, title, level, file, ATT&CK tags,
false positives; for a correlation what was counted against which condition)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..event import Event
from ..suppression import Hit, duration
from .ruleset import CorrelationRule, DetectionRule


def rule_hit(rule: DetectionRule, event: Event) -> Hit:
    info = rule.info
    return Hit(key=f"r:{info.id}", event=event, score=info.score, title=f"Sigma: {info.title}",
               explanation=explain(info), facts=facts_of(info))


def correlation_hit(corr: CorrelationRule, event: Event, group: str, group_by: Sequence[str],
                     observed: float, what: str, sequence: bool) -> Hit:
    info = corr.info
    shown = f"{observed:g}"
    found = f"{shown} {what} matched" if sequence else f"{shown} {what} (condition: {corr.op} {corr.count:g})"
    facts = {**facts_of(info), "correlation": corr.type, "timespan_s": corr.timespan_s,
             "observed": observed, "condition": {corr.op: corr.count}}
    if group_by:
        facts["group_by"] = list(group_by)  # the field names only: their values may be personal data
    return Hit(key=f"c:{info.id}:{group}", event=event, score=info.score, title=f"Sigma: {info.title}",
               explanation=f"{found} within {duration(corr.timespan_s)}. {explain(info)}", facts=facts)


def explain(info: Any) -> str:
    text = info.description or info.title
    return f"{text} (Sigma rule {info.id}, level {info.level}, {info.file})."


def facts_of(info: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {"rule_id": info.id, "rule_title": info.title, "level": info.level,
                             "rule_file": info.file}
    if info.tags:
        facts["tags"] = list(info.tags)
    if info.falsepositives:
        facts["falsepositives"] = list(info.falsepositives)
    return facts
