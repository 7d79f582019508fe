"""sigma: the site's Sigma rules, run on the same micro-batches and per-person state as the detectors.

One detector-like unit (id ``sigma``) holds every loaded rule (:class:`~.ruleset.RuleSet`, swapped
by the runtime when the rules directory changes, like reference data). For each event of a person,
in arrival order: the rules the index says the event can match are checked (:mod:`.match`); a
matching detection rule raises a hit under its own key, unless only correlations use it (Sigma's
``generate: false``); each correlation that references it counts the event in the person's state
(:mod:`.correlate`) and raises a hit when its condition holds at that event. Hits fold into one alert
per rule (and correlation group) per ``suppress_s`` (:mod:`detectors.suppression`), so a replayed or
re-batched stream gives the same alerts.

An alert carries the rule's title, id, level (as its score, hence severity and risk weight), ATT&CK
tags and false-positive notes in ``facts``; the review app shows them.

State (JSON, bounded): ``n``/``o`` (newest event time, open alerts: :class:`RuleDetector`) and ``c``:
correlation id -> group digest -> that group's counts (:mod:`.correlate`), at most ``max_groups``
groups per correlation (the least recently seen dropped first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base import Clock
from ..event import Event
from ..reference import Reference, ReferenceHolder
from ..suppression import Folding, Hit, RuleDetector, duration
from . import correlate
from .match import Context, Doc, _text
from .ruleset import CorrelationRule, DetectionRule, RuleSet

REFERENCE_PLACEHOLDERS = ("staff", "leavers", "approved_domains", "sanctioned_apps")
"""``%name%`` lists that ``expand`` may use, read from the reference data (updated without a reload):
every staff user id, those with a leave date, every domain of the sharing register, every sanctioned
application id."""


@dataclass(frozen=True)
class SigmaConfig:
    enabled: bool = True
    suppress_s: int = 3600
    """Hits of one rule (and correlation group) within this long of an alert's first fold into it."""
    grace_s: int = 3600
    """Correlations count an event up to this much older than the person's newest event."""
    max_groups: int = 64
    """Per person and correlation, at most this many group-by values are tracked at once."""
    placeholders: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Site lists for ``expand`` (``%name%``), besides the reference-data ones."""


class RulesHolder:
    """The current :class:`RuleSet`; the runtime swaps ``current`` when the rule files change."""

    def __init__(self, current: RuleSet | None = None) -> None:
        self.current = current if current is not None else RuleSet()
        self.refused = 0
        """Rules refused by the last load (those pySigma could not parse included)."""

    def replace(self, rules: RuleSet, refused: int | None = None) -> None:
        self.current = rules
        self.refused = len(rules.refused) if refused is None else refused


def reference_placeholders(ref: Reference) -> dict[str, tuple[str, ...]]:
    return {
        "staff": tuple(sorted(ref.staff)),
        "leavers": tuple(sorted(u for u, s in ref.staff.items() if s.leave_date)),
        "approved_domains": tuple(sorted({d for p in ref.sharing.values() for d in p.domains})),
        "sanctioned_apps": tuple(sorted({a for apps in ref.apps.values() for a in apps})),
    }


class SigmaRules(RuleDetector):
    id = "sigma"
    version = 1
    summary = "The site's Sigma rules (config/rules/): detections and correlations, per person."
    Config = SigmaConfig
    config: SigmaConfig

    def __init__(self, rules: RulesHolder | RuleSet, config: SigmaConfig | None = None,
                 reference: ReferenceHolder | Reference | None = None) -> None:
        super().__init__(config if config is not None else SigmaConfig(), reference)
        self.rules = rules if isinstance(rules, RulesHolder) else RulesHolder(rules)
        self._context: tuple[Any, Context] | None = None

    def needs(self) -> None:
        return None

    def keep_s(self) -> float:
        return float(self.config.suppress_s + self.config.grace_s)

    def context(self, ref: Reference) -> Context:
        key = (id(ref), ref.version)
        got = self._context
        if got is None or got[0] != key:
            lists = {**reference_placeholders(ref), **{k: tuple(v) for k, v in self.config.placeholders.items()}}
            got = self._context = (key, Context(lists, key))
        return got[1]

    # -- per event ---------------------------------------------------------------------------------

    def hits(self, subject: str, event: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        rs = self.rules.current
        if not rs.detections:
            return ()
        if event.doc is None and event.raw is not None and not rs.index.may_match(event.raw):
            return ()  # none of the values the rules need is in the event's text: nothing to decode
        doc = Doc(event.document)
        candidates = rs.index.candidates(doc)
        if not candidates:
            return ()
        ctx = self.context(ref)
        out: list[Hit] = []
        late = event.ts <= newest - self.config.grace_s
        for i in candidates:
            rule = rs.detections[i]
            if not rule.compiled.matcher(doc, ctx):
                continue
            if rule.alert:
                out.append(self._rule_hit(rule, event))
            if rule.correlations and not late:
                for ci in rule.correlations:
                    hit = self._correlate(rs.correlations[ci], i, doc, event, state)
                    if hit is not None:
                        out.append(hit)
        return out

    def _rule_hit(self, rule: DetectionRule, event: Event) -> Hit:
        info = rule.info
        return Hit(key=f"r:{info.id}", event=event, score=info.score, title=f"Sigma: {info.title}",
                   explanation=_explain(info), facts=_facts(info))

    def _correlate(self, corr: CorrelationRule, rule_index: int, doc: Doc, event: Event,
                   state: dict[str, Any]) -> Hit | None:
        pos = corr.rules.index(rule_index)
        values = []
        for f in corr.group_by[pos]:
            got = [v for v in doc.get(f) if v is not None]
            if not got:
                return None  # an event without a group-by field is not grouped (as backends drop nulls)
            values.append(_text(got[0]))
        group = correlate.digest("\x1f".join(values)) if values else "-"
        groups = state.setdefault("c", {}).setdefault(corr.info.id, {})
        g = groups.get(group)
        if g is None:
            g = groups[group] = {}
            if len(groups) > self.config.max_groups:
                oldest = min((k for k in groups if k != group), key=lambda k: groups[k].get("t", 0))
                del groups[oldest]
        ts = event.ts
        if g.get("t", -math.inf) < ts:
            g["t"] = ts
        kind, span, bucket = corr.type, corr.timespan_s, corr.bucket_s
        what = ""
        if kind == "event_count":
            observed = correlate.event_count(g, ts, span, bucket)
            what = "matching events"
        elif kind == "value_count":
            vf = corr.value_field[pos]
            got = [v for v in doc.get(vf) if v is not None] if vf else []
            if not got:
                return None
            cap = int(max(corr.count, 1)) + 1
            observed = correlate.value_count(g, ts, _text(got[0]), span, bucket, cap)
            what = f"distinct values of {vf}"
        elif kind in ("value_sum", "value_avg", "value_percentile", "value_median"):
            vf = corr.value_field[pos]
            number = None
            for v in doc.get(vf) if vf else ():
                if type(v) in (int, float) or (type(v) is str and _numeric(v)):
                    number = float(v)
                    break
            if number is None:
                return None
            if kind in ("value_sum", "value_avg"):
                observed = correlate.value_sum(g, ts, number, span, bucket, kind == "value_avg")
                what = f"{'sum' if kind == 'value_sum' else 'average'} of {vf}"
            else:
                observed = correlate.value_percentile(g, ts, number, span, bucket, corr.percentile or 50.0)
                what = f"{corr.percentile:g}th percentile of {vf}"
        elif kind == "temporal":
            observed, inside = correlate.temporal(g, ts, pos, span)
            if corr.expression is not None:
                seen = {corr.names[k] for k in inside}
                if not _holds(corr.expression, seen):
                    return None
                return self._correlation_hit(corr, event, group, corr.group_by[pos], observed, "referenced rules", True)
            what = "of the referenced rules"
        else:  # temporal_ordered
            if not correlate.temporal_ordered(g, ts, pos, len(corr.rules), span):
                return None
            return self._correlation_hit(corr, event, group, corr.group_by[pos], float(len(corr.rules)),
                                         "referenced rules in order", True)
        if not correlate.OPS[corr.op](observed, corr.count):
            return None
        return self._correlation_hit(corr, event, group, corr.group_by[pos], observed, what, False)

    def _correlation_hit(self, corr: CorrelationRule, event: Event, group: str, group_by: Sequence[str],
                         observed: float, what: str, sequence: bool) -> Hit:
        info = corr.info
        shown = f"{observed:g}"
        found = f"{shown} {what} matched" if sequence else f"{shown} {what} (condition: {corr.op} {corr.count:g})"
        facts = {**_facts(info), "correlation": corr.type, "timespan_s": corr.timespan_s,
                 "observed": observed, "condition": {corr.op: corr.count}}
        if group_by:
            facts["group_by"] = list(group_by)  # the field names only: their values may be personal data
        return Hit(key=f"c:{info.id}:{group}", event=event, score=info.score, title=f"Sigma: {info.title}",
                   explanation=f"{found} within {duration(corr.timespan_s)}. {_explain(info)}", facts=facts)

    # -- expiry ------------------------------------------------------------------------------------

    def tidy(self, subject: str, state: dict[str, Any], ref: Reference, newest: float | None,
             clock: Clock, fold: Folding | None) -> bool:
        corr_state = state.get("c")
        if not corr_state:
            state.pop("c", None)
            return False
        rs = self.rules.current
        live = {c.info.id: c for c in rs.correlations}
        for cid in list(corr_state):
            corr = live.get(cid)
            if corr is None:  # the rule was removed or changed its id: its counts go
                del corr_state[cid]
                continue
            if newest is None:
                continue
            horizon = newest - self.config.grace_s - corr.timespan_s
            groups = corr_state[cid]
            for gk in list(groups):
                if correlate.expire(corr.type, groups[gk], horizon, corr.bucket_s):
                    del groups[gk]
            if not groups:
                del corr_state[cid]
        if not corr_state:
            del state["c"]
            return False
        return True


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _holds(node: Any, seen: set[str]) -> bool:
    """An extended temporal condition (pySigma's parse tree) over the rules seen in the window."""
    from sigma.correlations import (
        CorrelationConditionAND,
        CorrelationConditionNOT,
        CorrelationConditionOR,
        SigmaRuleReference,
    )

    if isinstance(node, SigmaRuleReference):
        return node.reference in seen
    if isinstance(node, CorrelationConditionAND):
        return all(_holds(a, seen) for a in node.args)
    if isinstance(node, CorrelationConditionOR):
        return any(_holds(a, seen) for a in node.args)
    if isinstance(node, CorrelationConditionNOT):
        return not _holds(node.args[0], seen)
    raise ValueError(f"unknown correlation condition element {type(node).__name__}")


def _explain(info: Any) -> str:
    text = info.description or info.title
    return f"{text} (Sigma rule {info.id}, level {info.level}, {info.file})."


def _facts(info: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {"rule_id": info.id, "rule_title": info.title, "level": info.level,
                             "rule_file": info.file}
    if info.tags:
        facts["tags"] = list(info.tags)
    if info.falsepositives:
        facts["falsepositives"] = list(info.falsepositives)
    return facts


def build(rules: RulesHolder | RuleSet, config: SigmaConfig | Mapping[str, Any] | None = None,
          reference: ReferenceHolder | Reference | None = None) -> SigmaRules:
    if isinstance(config, Mapping):
        config = SigmaConfig(**{k: v for k, v in config.items()})
    return SigmaRules(rules, config, reference)
