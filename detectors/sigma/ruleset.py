"""A set of Sigma rules compiled for the stream, from pySigma rule objects. Pure: no files.

:func:`compile_rules` takes pySigma ``SigmaRule`` / ``SigmaCorrelationRule`` objects (parsed and
already passed through the processing pipeline that maps taxonomy field names to ECS) with the file
each came from, and returns a :class:`RuleSet`: the detection rules compiled into matchers
(:mod:`.match`) and indexed, the correlation rules with what they count, and the rules refused, each
with its file, field and the feature that is not supported. Nothing is skipped silently: a rule is
either compiled whole or refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .index import Index
from .match import Compiled, compile_conditions
from .values import Unsupported

LEVELS = ("informational", "low", "medium", "high", "critical")
LEVEL_SCORES = {"informational": 15.0, "low": 30.0, "medium": 50.0, "high": 75.0, "critical": 90.0}
"""Alert score per Sigma level (the score gives the severity: <40 low, <65 medium, <85 high, else
critical; the severity gives the weight in the person's risk score, ``[detectors.risk]``)."""

PERSON_FIELDS = ("user.id",)
"""Fields that name the person whose events are keyed together. A correlation grouped by one of them
is counted in the person's own state; one grouped by other fields only (``host.name``, ``source.ip``,
none at all) is *grouped*: its matching events are re-keyed by the group-by values and counted by the
group stage (:mod:`.group`)."""

FIELD_ROOTS = frozenset({
    # ECS field sets and top-level fields
    "@timestamp", "agent", "as", "client", "cloud", "container", "data_stream", "destination", "device",
    "dll", "dns", "ecs", "email", "error", "event", "faas", "file", "group", "host", "http", "labels",
    "log", "message", "network", "observer", "orchestrator", "organization", "package", "process",
    "registry", "related", "rule", "server", "service", "source", "tags", "threat", "tls", "trace",
    "transaction", "span", "url", "user", "user_agent", "vulnerability",
    # Custodes' own extensions and the vendor namespaces Elastic's integrations keep
    "custodes", "okta", "o365", "m365_defender", "google_workspace", "cisco_duo", "onelogin", "azure",
    "aws", "gcp",
})
"""The first part of a field name the canonical event can hold. A rule testing any other field (a
Sigma taxonomy name the pipeline does not map, e.g. ``CommandLine``) is refused, not left to never
match."""

CORRELATION_TYPES = ("event_count", "value_count", "temporal", "temporal_ordered", "value_sum",
                     "value_avg", "value_percentile", "value_median")


@dataclass(frozen=True)
class RuleInfo:
    id: str
    name: str | None
    title: str
    level: str
    score: float
    tags: tuple[str, ...]
    falsepositives: tuple[str, ...]
    description: str
    file: str
    status: str | None = None


@dataclass
class DetectionRule:
    info: RuleInfo
    compiled: Compiled
    alert: bool = True
    """False when only correlations use it (a rule referenced by a correlation without ``generate``)."""
    correlations: list[int] = field(default_factory=list)


@dataclass
class CorrelationRule:
    info: RuleInfo
    type: str
    rules: tuple[int, ...]
    """Indexes of the referenced detection rules, in the listed order."""
    timespan_s: int
    bucket_s: int
    group_by: tuple[tuple[str, ...], ...]
    """Per referenced rule, the fields other than the person's to group by (aliases resolved)."""
    op: str
    count: float
    value_field: tuple[str | None, ...] = ()
    """Per referenced rule, the field whose values are counted or summed (aliases resolved)."""
    percentile: float | None = None
    expression: Any = None
    """The parsed extended condition of a temporal rule (and/or/not over rule names), if any."""
    names: tuple[str, ...] = ()
    """The referenced rules as named in the rule (for the extended condition)."""
    key: str = ""
    """The correlation's key in state and records: its id, or ``id@file`` for a later rule reusing an
    id (the specification's own examples do), so two rules never share counts."""
    grouped: bool = False
    """True when the group-by does not include the person: counted across people by the group stage
    (:mod:`.group`), from records the person pass emits, not in the person's state."""


@dataclass(frozen=True)
class Refusal:
    file: str
    rule: str
    """The rule's id or title."""
    field: str | None
    feature: str
    reason: str
    """A short category for counting (``unmapped field``, ``unsupported correlation`` …)."""

    def message(self) -> str:
        where = f", field {self.field!r}" if self.field else ""
        return f"{self.file}: rule {self.rule}{where}: {self.feature}"


@dataclass
class RuleSet:
    detections: list[DetectionRule] = field(default_factory=list)
    correlations: list[CorrelationRule] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    index: Index = field(default_factory=lambda: Index(()))
    placeholders: frozenset[str] = frozenset()
    """Every placeholder name an ``expand`` of a loaded rule uses."""

    def __post_init__(self) -> None:
        self.index = Index([r.compiled for r in self.detections])

    def __len__(self) -> int:
        return len(self.detections) + len(self.correlations)

    @property
    def rule_ids(self) -> frozenset[str]:
        return frozenset([r.info.id for r in self.detections] + [c.info.id for c in self.correlations])


class _Refused(Exception):
    def __init__(self, field_name: str | None, feature: str, reason: str) -> None:
        super().__init__(feature)
        self.field = field_name
        self.feature = feature
        self.reason = reason


def _info(rule: Any, file: str, levels: Mapping[str, str], scores: Mapping[str, float]) -> RuleInfo:
    rid = str(rule.id) if rule.id is not None else (rule.name or rule.title)
    level = levels.get(rid) or levels.get(rule.name or "") or (str(rule.level) if rule.level else "medium")
    level = level.lower()
    if level not in scores:
        raise _Refused(None, f"level {level!r} is not one of {', '.join(LEVELS)}", "bad level")
    return RuleInfo(
        id=rid, name=rule.name, title=rule.title or rid, level=level, score=scores[level],
        tags=tuple(f"{t.namespace}.{t.name}" for t in (rule.tags or ())),
        falsepositives=tuple(str(f) for f in (rule.falsepositives or ())),
        description=(rule.description or "").strip(), file=file,
        status=str(rule.status) if rule.status else None,
    )


def _check_fields(fields: Iterable[str], roots: frozenset[str]) -> None:
    for f in sorted(fields):
        if f.split(".", 1)[0] not in roots:
            raise _Refused(f, "not a field of the canonical (ECS) event, and the processing pipeline "
                           "maps no Sigma taxonomy name to it", "unmapped field")


def compile_rules(
    rules: Sequence[tuple[Any, str]],
    *,
    disabled: Iterable[str] = (),
    levels: Mapping[str, str] | None = None,
    level_scores: Mapping[str, float] | None = None,
    placeholders: Iterable[str] = (),
    roots: frozenset[str] = FIELD_ROOTS,
    person_fields: Sequence[str] = PERSON_FIELDS,
    field_map: Mapping[str, str] | None = None,
) -> RuleSet:
    """``rules``: (pySigma rule, file name) pairs, in load order. ``disabled``: rule ids or names
    not to run; ``levels``: rule id/name -> level override; ``placeholders``: the placeholder names
    that can be resolved; ``field_map``: taxonomy -> ECS names for correlation ``group-by`` and
    ``field`` (the pipeline maps the detections' own fields)."""
    from sigma.correlations import SigmaCorrelationRule, SigmaExtendedCorrelationCondition

    levels = dict(levels or {})
    scores = {**LEVEL_SCORES, **(level_scores or {})}
    off = set(disabled)
    known_placeholders = set(placeholders)
    fmap = dict(field_map or {})
    out = RuleSet()
    out.detections = []
    by_ref: dict[str, int] = {}
    used: set[str] = set()
    correlations = []
    silenced: set[str] = set()
    for rule, file in rules:
        label = str(rule.id) if rule.id is not None else (rule.name or rule.title or "?")
        if str(rule.id) in off or (rule.name and rule.name in off) or label in off:
            out.disabled.append(label)
            if isinstance(rule, SigmaCorrelationRule) and not rule.generate:
                # its rules stay quiet: disabling a correlation must not turn its helpers into alerts
                silenced.update(r.reference for r in (rule.rules or []))
            continue
        if isinstance(rule, SigmaCorrelationRule):
            correlations.append((rule, file))
            continue
        try:
            info = _info(rule, file, levels, scores)
            try:
                compiled = compile_conditions([c.parsed for c in rule.detection.parsed_condition])
            except Unsupported as exc:
                raise _Refused(exc.field, exc.feature, _reason(exc.feature)) from None
            except Exception as exc:  # noqa: BLE001 - pySigma's own errors: refused with its message
                raise _Refused(None, f"{type(exc).__name__}: {exc}", "invalid rule") from None
            _check_fields(compiled.fields, roots)
            missing = sorted(compiled.placeholders - known_placeholders)
            if missing:
                raise _Refused(None, f"expand placeholder %{missing[0]}% is not defined (reference data "
                               "or [rules.placeholders] in config)", "unknown placeholder")
        except _Refused as exc:
            out.refused.append(Refusal(file, label, exc.field, exc.feature, exc.reason))
            continue
        i = len(out.detections)
        out.detections.append(DetectionRule(info, compiled))
        used |= compiled.placeholders
        for ref in (str(rule.id) if rule.id is not None else None, rule.name):
            if ref:
                by_ref[ref] = i
    keys: set[str] = set()
    for rule, file in correlations:
        label = str(rule.id) if rule.id is not None else (rule.name or rule.title or "?")
        try:
            info = _info(rule, file, levels, scores)
            kind = rule.type.name.lower()
            if kind not in CORRELATION_TYPES:
                raise _Refused(None, f"correlation type {kind} is not supported", "unsupported correlation")
            refs = [r.reference for r in (rule.rules or [])]
            cond = rule.condition
            expression = None
            if isinstance(cond, SigmaExtendedCorrelationCondition):
                refs = refs or cond.get_referenced_rules()
                expression = cond.parsed
            correlation_refs = {str(r.id) for r, _ in correlations if r.id is not None} | {
                r.name for r, _ in correlations if r.name}
            idx = []
            for ref in refs:
                if ref not in by_ref and ref in correlation_refs:
                    raise _Refused(None, f"referenced rule {ref!r} is a correlation: correlations of correlations "
                                   "are not supported", "unsupported correlation")
                if ref not in by_ref:
                    raise _Refused(None, f"referenced rule {ref!r} is not loaded (missing, refused or disabled)",
                                   "referenced rule not loaded")
                idx.append(by_ref[ref])
            aliases = {a.alias: {r.reference: f for r, f in a.mapping.items()} for a in rule.aliases}
            group = list(rule.group_by or [])
            per_rule = []
            with_person = []
            for ref in refs:
                fields = []
                has_person = False
                for g in group:
                    name = aliases.get(g, {}).get(ref, g)
                    name = fmap.get(name, name)
                    if name in person_fields:
                        has_person = True
                    else:
                        fields.append(name)
                with_person.append(has_person)
                _check_fields(fields, roots)
                per_rule.append(tuple(fields))
            if any(with_person) and not all(with_person):
                raise _Refused(",".join(group) or None, "group-by names the person for some referenced rules "
                               "and not for others (aliases): the events cannot be counted together",
                               "unsupported correlation")
            grouped = not all(with_person)
            op, count, percentile = "gte", float(len(idx)), None
            value_fields: list[str | None] = [None] * len(idx)
            if not isinstance(cond, SigmaExtendedCorrelationCondition):
                op = cond.op.name.lower()
                count = float(cond.count)
                percentile = float(cond.percentile) if cond.percentile is not None else None
                if cond.fieldref is not None:
                    if isinstance(cond.fieldref, list):
                        raise _Refused(",".join(cond.fieldref), "a condition over several fields",
                                       "unsupported correlation")
                    value_fields = []
                    for ref in refs:
                        name = aliases.get(cond.fieldref, {}).get(ref, cond.fieldref)
                        value_fields.append(fmap.get(name, name))
                    _check_fields([f for f in value_fields if f], roots)
            if kind == "value_median":
                percentile = 50.0
            if kind == "value_percentile" and percentile is None and value_fields == [None] * len(idx):
                raise _Refused(None, "value_percentile without condition.field", "unsupported correlation")
            if kind == "temporal_ordered" and expression is None and not (op == "gte" and count == len(idx)):
                raise _Refused(None, "temporal_ordered with a condition other than every rule in order",
                               "unsupported correlation")
            if kind == "temporal_ordered" and expression is not None:
                raise _Refused(None, "temporal_ordered with an extended condition", "unsupported correlation")
            timespan = int(rule.timespan.seconds)
            corr = CorrelationRule(
                info=info, type=kind, rules=tuple(idx), timespan_s=timespan,
                bucket_s=max(1, timespan // 60), group_by=tuple(per_rule), op=op, count=count,
                value_field=tuple(value_fields), percentile=percentile, expression=expression,
                names=tuple(refs), grouped=grouped,
            )
        except _Refused as exc:
            out.refused.append(Refusal(file, label, exc.field, exc.feature, exc.reason))
            continue
        corr.key = info.id if info.id not in keys else f"{info.id}@{file}"
        keys.add(corr.key)
        ci = len(out.correlations)
        out.correlations.append(corr)
        for i in corr.rules:
            out.detections[i].correlations.append(ci)
            if not rule.generate:
                out.detections[i].alert = False
    for ref in silenced:
        if ref in by_ref:
            out.detections[by_ref[ref]].alert = False
    out.placeholders = frozenset(used)
    out.index = Index([r.compiled for r in out.detections],
                      skip=[i for i, r in enumerate(out.detections) if not r.alert and not r.correlations])
    return out


def _reason(feature: str) -> str:
    if "placeholder" in feature:
        return "unknown placeholder"
    if "regular expression" in feature:
        return "regular expression"
    return "unsupported value"
