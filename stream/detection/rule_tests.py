"""``custodes rules test``: each rule file's own example events (a sibling ``*.test.yml``) through the
decode/validate path and a Sigma unit holding every loaded rule, counting the alerts of that file's
rules against the expected number (as panther's inline tests and StreamAlert's test events do)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detectors.sigma import RulesHolder, SigmaRules
from detectors.sigma.grouped import GroupConfig, GroupStage, group_key
from stream.contract.settings import Settings
from stream.detection.rules import TEST_SUFFIXES, Loaded, display_path, load, sigma_config


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
    from stream.contract.codec import Invalid, decode, validate
    from stream.detection.reference import load_dir

    loaded = load(settings.rules.model_copy(update={"disabled": ()}), directories)
    reference = ReferenceHolder(load_dir(settings.reference_dir))
    results: list[CaseResult] = []
    root = Path.cwd()
    for path in loaded.files:
        tests = test_file_for(path)
        if tests is None:
            continue
        name = display_path(path, root)
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
