"""Sigma rules at run time: reading rule directories with pySigma, reloading them when they change,
and running each rule's own example events (``custodes rules list|check|test``).

Rules are ``*.yml`` / ``*.yaml`` files under ``[rules] dir`` and ``[rules] dirs`` (recursively; a
file may hold several YAML documents, e.g. a correlation and the rules it uses). Each file is parsed
by pySigma (``SigmaCollection.from_yaml``), passed through the processing pipeline
(``[rules] pipeline``, a pySigma pipeline file mapping Sigma taxonomy fields to the canonical event)
and compiled by :func:`detectors.sigma.ruleset.compile_rules`. A file pySigma cannot parse, and a
rule using something the engine does not evaluate, is refused with the file, the field and the
reason; the others still load.

``<name>.test.yml`` beside a rule file holds its examples (docs/rules.md)::

    cases:
      - name: anonymous link
        alerts: 1                    # alerts the file's rules raise over these events
        events:
          - {"@timestamp": "...", "user": {"id": "pc-1"}, ...}

The worker checks the directories every ``reference_reload_s`` and swaps in the recompiled rules when
a file changed (a broken edit keeps the rules that were running and logs why).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.sigma import REFERENCE_PLACEHOLDERS, RulesHolder, SigmaConfig, SigmaRules
from detectors.sigma.grouped import GroupConfig, GroupStage, group_key
from detectors.sigma.ruleset import Refusal, RuleSet, compile_rules
from stream.contract.settings import Rules, Settings

log = logging.getLogger("custodes.rules")

TEST_SUFFIXES = (".test.yml", ".test.yaml")


def rule_files(directories: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for d in directories:
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            if p.is_file() and p.suffix in (".yml", ".yaml") and not p.name.endswith(TEST_SUFFIXES):
                out.append(p)
    return out


def signature(settings: Rules) -> tuple:
    files = rule_files(settings.directories)
    extra = [settings.pipeline] if settings.pipeline is not None and settings.pipeline.is_file() else []
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in [*files, *extra])


def load_pipeline(path: Path | None) -> Any:
    from sigma.processing.pipeline import ProcessingPipeline

    if path is None or not path.is_file():
        return ProcessingPipeline()
    return ProcessingPipeline.from_yaml(path.read_text(encoding="utf-8"))


def _field_map(pipeline: Any) -> dict[str, str]:
    """Every plain field-name mapping of the pipeline, merged (for correlations' group-by/field,
    which have no logsource of their own)."""
    from sigma.processing.transformations import FieldMappingTransformation

    out: dict[str, str] = {}
    for item in getattr(pipeline, "items", ()):
        t = getattr(item, "transformation", None)
        if isinstance(t, FieldMappingTransformation):
            for k, v in t.mapping.items():
                if isinstance(v, str):
                    out.setdefault(k, v)
                elif isinstance(v, list) and len(v) == 1:
                    out.setdefault(k, v[0])
    return out


@dataclass
class Loaded:
    rules: RuleSet
    files: list[Path] = field(default_factory=list)
    parse_refused: list[Refusal] = field(default_factory=list)

    @property
    def refused(self) -> list[Refusal]:
        return self.parse_refused + self.rules.refused

    def counts(self) -> Counter[str]:
        return Counter(r.reason for r in self.refused)


def parse_files(files: Sequence[Path], pipeline: Any, root: Path | None = None
                ) -> tuple[list[tuple[Any, str]], list[Refusal]]:
    """pySigma rule objects (pipeline applied) with their file names, and the files refused."""
    from sigma.collection import SigmaCollection

    parsed: list[tuple[Any, str]] = []
    refused: list[Refusal] = []
    for path in files:
        name = _display(path, root)
        try:
            collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"), resolve_references=False)
        except Exception as exc:  # noqa: BLE001 - pySigma's parse errors: the file is refused with them
            refused.append(Refusal(name, "?", None, f"{type(exc).__name__}: {exc}"[:300], _parse_reason(exc)))
            continue
        for rule in collection.rules:
            label = str(rule.id) if getattr(rule, "id", None) is not None else (rule.name or rule.title or "?")
            if type(rule).__name__ == "SigmaFilter":
                refused.append(Refusal(name, label, None, "Sigma filters are not supported", "filter"))
                continue
            try:
                pipeline.apply(rule)
            except Exception as exc:  # noqa: BLE001
                refused.append(Refusal(name, label, None, f"pipeline: {type(exc).__name__}: {exc}"[:300],
                                       "pipeline error"))
                continue
            parsed.append((rule, name))
    return parsed, refused


def _parse_reason(exc: Exception) -> str:
    name = type(exc).__name__
    if "Modifier" in name:
        return "unknown modifier"
    if "Condition" in name:
        return "invalid condition"
    return "invalid rule"


def _display(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)


def load(settings: Rules, directories: Sequence[Path] | None = None) -> Loaded:
    """Read and compile the rules of ``settings`` (or of ``directories``)."""
    dirs = tuple(directories) if directories is not None else settings.directories
    pipeline = load_pipeline(settings.pipeline)
    files = rule_files(dirs)
    root = Path.cwd()
    parsed, refused = parse_files(files, pipeline, root)
    rules = compile_rules(
        parsed, disabled=settings.disabled, levels=settings.levels, level_scores=settings.level_scores,
        placeholders=set(REFERENCE_PLACEHOLDERS) | set(settings.placeholders), field_map=_field_map(pipeline),
    )
    return Loaded(rules, files, refused)


def sigma_config(settings: Rules) -> SigmaConfig:
    return SigmaConfig(suppress_s=settings.suppress_s, grace_s=settings.grace_s, max_groups=settings.max_groups,
                       placeholders={k: tuple(v) for k, v in settings.placeholders.items()})


def detector_for(settings: Settings, reference: Any) -> tuple[RulesHolder, SigmaRules | None]:
    """The Sigma unit for the worker or replay (None when rules are off or none load), and the holder
    the worker's reloader swaps. Refused rules are logged, one line each (file, field, reason)."""
    holder = RulesHolder()
    if not settings.rules.enabled:
        return holder, None
    loaded = load(settings.rules)
    for r in loaded.refused:
        log.warning("sigma rule refused: %s", r.message())
    holder.replace(loaded.rules, len(loaded.refused))
    if not loaded.rules.detections:
        return holder, None
    return holder, SigmaRules(holder, sigma_config(settings.rules), reference)


class RulesReloader:
    """Recompiles the rules when a rule file (or the pipeline) changed; keeps the old set on error."""

    def __init__(self, holder: RulesHolder, settings: Rules) -> None:
        self.holder = holder
        self.settings = settings
        self.seen = signature(settings)

    def check(self) -> bool:
        now = signature(self.settings)
        if now == self.seen:
            return False
        self.seen = now
        try:
            loaded = load(self.settings)
        except Exception as exc:  # noqa: BLE001 - a bad edit must not stop detection: keep the old rules
            log.error("sigma rules not reloaded: %s", exc)
            return False
        for r in loaded.refused:
            log.warning("sigma rule refused: %s", r.message())
        self.holder.replace(loaded.rules, len(loaded.refused))
        log.info("sigma rules reloaded: %d loaded, %d refused", len(loaded.rules), len(loaded.refused))
        return True


def rules_gauge(registry: Any, holder: RulesHolder) -> Any:
    """``custodes_sigma_rules{state}``: detection and correlation rules running, rules refused at the
    last load (read at each scrape, so a reload shows at once)."""
    from prometheus_client import Gauge

    gauge = Gauge("custodes_sigma_rules", "Sigma rules running (detection, correlation) and refused at the "
                  "last load (refused).", ["state"], registry=registry)
    gauge.labels("detection").set_function(lambda: len(holder.current.detections))
    gauge.labels("correlation").set_function(lambda: len(holder.current.correlations))
    gauge.labels("refused").set_function(lambda: holder.refused)
    return gauge


# -- rule tests ---------------------------------------------------------------------------------------


@dataclass
class CaseResult:
    file: str
    case: str
    expected: int
    got: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.expected == self.got


def test_file_for(rule_file: Path) -> Path | None:
    for suffix in TEST_SUFFIXES:
        p = rule_file.with_name(rule_file.name.rsplit(".", 1)[0] + suffix)
        if p.is_file():
            return p
    return None


def run_tests(settings: Settings, directories: Sequence[Path] | None = None) -> tuple[Loaded, list[CaseResult]]:
    """Each rule file's test cases: its events through the decode/validate path and a Sigma unit
    holding every loaded rule; the alerts raised by the rules of that file are counted. A rule the site
    disabled is tested all the same (its examples say what it would raise if enabled)."""
    import orjson
    import yaml

    from detectors.reference import ReferenceHolder
    from stream.contract.schema import Invalid, decode, validate
    from stream.detection.reference import load_dir

    loaded = load(settings.rules.model_copy(update={"disabled": ()}), directories)
    reference = ReferenceHolder(load_dir(settings.reference_dir))
    results: list[CaseResult] = []
    root = Path.cwd()
    for path in loaded.files:
        tests = test_file_for(path)
        if tests is None:
            continue
        name = _display(path, root)
        ids = {r.info.id for r in loaded.rules.detections if r.info.file == name} | {
            c.info.id for c in loaded.rules.correlations if c.info.file == name}
        try:
            spec = yaml.safe_load(tests.read_text(encoding="utf-8")) or {}
            cases = spec.get("cases") or []
        except Exception as exc:  # noqa: BLE001
            results.append(CaseResult(name, "-", 0, 0, f"test file unreadable: {exc}"))
            continue
        for n, case in enumerate(cases, 1):
            label = str(case.get("name") or n)
            expected = int(case.get("alerts", 0))
            unit = SigmaRules(RulesHolder(loaded.rules), sigma_config(settings.rules), reference)
            try:
                events = []
                for doc in case.get("events") or []:
                    raw = orjson.dumps(doc)
                    events.append(validate(decode(raw), raw))
            except Invalid as exc:
                results.append(CaseResult(name, label, expected, 0, f"example event invalid: {exc}"))
                continue
            states: dict[str, Any] = {}
            alerts: dict[str, Any] = {}
            stage = GroupStage(unit.rules, GroupConfig(suppress_s=unit.config.suppress_s,
                                                       grace_s=unit.config.grace_s))
            groups: dict[str, Any] = {}
            for ev in events:
                st, got = unit.process(ev.user_id, [ev], states.get(ev.user_id), lambda t=ev.ts: t)
                states[ev.user_id] = st
                for _, rec in unit.take_records():  # correlations grouped by other than the person
                    key = group_key(rec)
                    groups[key], more = stage.apply([(rec, None)], groups.get(key))
                    got = [*got, *more]
                for a in got:
                    if a.facts.get("rule_id") in ids:
                        alerts[a.id] = a
            results.append(CaseResult(name, label, expected, len(alerts)))
    return loaded, results
