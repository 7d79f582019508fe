"""sigma: the site's Sigma rules, run on the same micro-batches and per-person state as the detectors.

One detector-like unit (id ``sigma``) holds every loaded rule (:class:`~.ruleset.RuleSet`, swapped
by the runtime when the rules directory changes, like reference data). For each event of a person,
in arrival order: the rules the index says the event can match are checked (:mod:`.match`); a
matching detection rule raises a hit under its own key, unless only correlations use it (Sigma's
``generate: false``); each correlation that references it counts the event in the person's state
(:mod:`.correlate`) and raises a hit when its condition holds at that event. Hits fold into one alert
per rule (and correlation group) per ``suppress_s`` (:mod:`detectors.suppression`), so a replayed or
re-batched stream gives the same alerts.

A correlation grouped by something other than the person is not counted here: the unit emits a
record for each matching event (:meth:`SigmaRules.take_records`), which the runtime re-keys by group
for the group stage (:mod:`.grouped`).

An alert carries the rule's title, id, level (as its score, hence severity and risk weight), ATT&CK
tags and false-positive notes in ``facts``; the review app shows them.

State (JSON, bounded): ``n``/``o`` (newest event time, open alerts: :class:`RuleDetector`) and ``c``:
correlation id -> group digest -> that group's counts (:mod:`.correlate`), at most ``max_groups``
groups per correlation (the least recently seen dropped first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..base import Clock
from ..event import Event
from ..reference import Reference, ReferenceHolder
from ..suppression import Folding, Hit, RuleDetector
from . import correlate, grouped
from .document import Context, Doc
from .explain import correlation_hit, rule_hit
from .ruleset import CorrelationRule, RuleSet

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
        self.outbox: dict[tuple[int, str, int], tuple[Event, dict[str, Any]]] = {}
        """Records of grouped correlations (:meth:`take_records`)."""

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
        index = rs.index
        if event.doc is None and event.raw is not None:
            # a closed document kept as text: validation read its event.action, a plain string
            actions = (event.action,) if event.action is not None else ()
            if not index.action_candidates(actions) and not (index.walks and index.may_match(event.raw)):
                return ()  # no rule names its action, none of the others' values is in its text: not decoded
            doc = Doc(event.document)
            candidates = index.candidates(doc, actions)
        else:
            doc = Doc(event.document)
            candidates = index.candidates(doc)
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
                out.append(rule_hit(rule, event))
            for ci in rule.correlations:
                corr = rs.correlations[ci]
                if corr.grouped:
                    self._emit(corr, i, doc, event, subject)  # lateness is the group stage's to judge
                elif not late:
                    hit = self._correlate(corr, i, doc, event, state)
                    if hit is not None:
                        out.append(hit)
        return out

    def _correlate(self, corr: CorrelationRule, rule_index: int, doc: Doc, event: Event,
                   state: dict[str, Any]) -> Hit | None:
        pos = corr.rules.index(rule_index)
        inputs = correlate.correlation_inputs(corr, pos, doc)
        if inputs is None:
            return None
        group_text, value, number = inputs
        group = correlate.digest(group_text) if corr.group_by[pos] else "-"
        groups = state.setdefault("c", {}).setdefault(corr.key, {})
        g = groups.get(group)
        if g is None:
            g = groups[group] = {}
            if len(groups) > self.config.max_groups:
                oldest = min((k for k in groups if k != group), key=lambda k: groups[k].get("t", 0))
                del groups[oldest]
        ts = event.ts
        if g.get("t", -math.inf) < ts:
            g["t"] = ts
        got = correlate.observe(corr, g, pos, ts, value, number)
        if got is None:
            return None
        return correlation_hit(corr, event, group, corr.group_by[pos], *got)

    def _emit(self, corr: CorrelationRule, rule_index: int, doc: Doc, event: Event, subject: str) -> None:
        """A grouped correlation: the event's record for the group stage (:mod:`.group`), kept in
        :attr:`outbox` until the runtime takes it (one per event, correlation and referenced rule, so
        the engine re-running a batch to isolate a failure does not double it)."""
        pos = corr.rules.index(rule_index)
        inputs = correlate.correlation_inputs(corr, pos, doc)
        if inputs is None:
            return
        group_text, value, number = inputs
        self.outbox[(id(event), corr.key, pos)] = (event, grouped.record(corr, pos, group_text, event, subject,
                                                                           value, number))

    def take_records(self) -> list[tuple[Event, dict[str, Any]]]:
        """The grouped-correlation records emitted since the last call (event, record), in order."""
        out = list(self.outbox.values())
        self.outbox.clear()
        return out

    # -- expiry ------------------------------------------------------------------------------------

    def tidy(self, subject: str, state: dict[str, Any], ref: Reference, newest: float | None,
             clock: Clock, fold: Folding | None) -> bool:
        corr_state = state.get("c")
        if not corr_state:
            state.pop("c", None)
            return False
        rs = self.rules.current
        live = {c.key: c for c in rs.correlations}
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


def build(rules: RulesHolder | RuleSet, config: SigmaConfig | Mapping[str, Any] | None = None,
          reference: ReferenceHolder | Reference | None = None) -> SigmaRules:
    if isinstance(config, Mapping):
        config = SigmaConfig(**{k: v for k, v in config.items()})
    return SigmaRules(rules, config, reference)
