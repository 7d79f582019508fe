"""Sigma rules from directories: the public SigmaHQ suite (loads and matches its own example, or is
refused with its reason), the shipped config/rules with their examples, reload, and the CLI."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    Placeholder,
    SigmaBool,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from detectors.sigma import RulesHolder, SigmaConfig, SigmaRules
from detectors.sigma.document import Doc as SigmaDoc
from stream.cli import main
from stream.contract.codec import decode, validate
from stream.contract.settings import Rules
from stream.contract.settings import load as load_settings
from stream.detection.rule_tests import run_tests
from stream.detection.rules import RulesReloader, load

ROOT = Path(__file__).resolve().parents[3]
SUITE = ROOT / "tests" / "data" / "sigma"

HAND_WRITTEN = {
    # a regular expression: an example written from the rule (no generator for regular expressions)
    # (a failed login whose user name is no e-mail address nor service account: a password typed there)
    "okta_password_in_alternateid_field.yml": {"okta": {"legacy_event_type": "core.user_auth.login_failed"},
                                               "custodes": {"identity": {"alias": "Hunter2Password!"}}},
}


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    node = doc
    parts = path.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def _get(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for p in path.split("."):
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def _example_value(value: Any) -> Any:
    if isinstance(value, SigmaExpansion):
        return _example_value(value.values[0])
    if isinstance(value, SigmaRegularExpression):
        raise LookupError("regular expression")
    if isinstance(value, SigmaString):
        out = []
        for p in value.s:
            if isinstance(p, str):
                out.append(p)
            elif p is SpecialChars.WILDCARD_SINGLE:
                out.append("x")
            elif isinstance(p, Placeholder):
                raise LookupError("placeholder")
        return "".join(out)
    if isinstance(value, SigmaBool):
        return value.boolean
    if isinstance(value, SigmaNumber):
        return value.number
    if isinstance(value, SigmaExists):
        if not value.exists:
            raise LookupError("absent")
        return "x"
    if isinstance(value, SigmaCIDRExpression):
        return str(value.network.network_address)
    if isinstance(value, SigmaCompareExpression):
        raise LookupError("comparison")
    raise LookupError(type(value).__name__)


def example(tree: Any, doc: dict[str, Any]) -> None:
    """Fill ``doc`` so the condition ``tree`` holds (AND: all, OR: the first that can, NOT: nothing set)."""
    if isinstance(tree, ConditionAND):
        for a in tree.args:
            example(a, doc)
    elif isinstance(tree, ConditionOR):
        for a in tree.args:
            trial: dict[str, Any] = orjson.loads(orjson.dumps(doc))
            try:
                example(a, trial)
            except LookupError:
                continue
            doc.clear()
            doc.update(trial)
            return
        raise LookupError("no branch")
    elif isinstance(tree, ConditionNOT):
        return
    elif isinstance(tree, ConditionFieldEqualsValueExpression):
        if isinstance(tree.value, SigmaNull):
            return
        value = _example_value(tree.value)
        old = _get(doc, tree.field)
        if isinstance(old, str) and isinstance(value, str):  # two tests of one field under AND (contains)
            value = f"{old} {value}"
        _set(doc, tree.field, value)
    elif isinstance(tree, ConditionValueExpression):
        doc["message"] = f"... {_example_value(tree.value)} ..."
    else:
        raise LookupError(type(tree).__name__)


def _suite(tmp_path: Path | None = None) -> Any:
    return load(Rules(dir=SUITE))


def test_every_sigmahq_rule_loads_and_matches_its_example_or_is_refused_with_reason() -> None:
    from sigma.collection import SigmaCollection

    loaded = _suite()
    rs = loaded.rules
    total = sum(len(SigmaCollection.from_yaml(p.read_text(), resolve_references=False).rules) for p in loaded.files)
    assert len(rs.detections) + len(rs.correlations) + len(loaded.refused) == total  # nothing skipped
    assert Counter(r.reason for r in loaded.refused) == {"unknown placeholder": 1}
    assert len(rs.detections) == 60 and len(rs.correlations) == 8
    sigmahq = [r for r in rs.detections if "specification" not in r.info.file]
    assert len(sigmahq) == 53
    unit = SigmaRules(RulesHolder(rs), SigmaConfig())
    from sigma.collection import SigmaCollection as C

    from stream.detection.rules import load_pipeline

    pipeline = load_pipeline(ROOT / "config" / "sigma-pipeline.yml")
    checked = 0
    for rule in sigmahq:
        path = ROOT / rule.info.file if not Path(rule.info.file).is_absolute() else Path(rule.info.file)
        (parsed,) = [r for r in C.from_yaml(path.read_text(), resolve_references=False).rules]
        pipeline.apply(parsed)
        body: dict[str, Any] = {}
        if path.name in HAND_WRITTEN:
            body = orjson.loads(orjson.dumps(HAND_WRITTEN[path.name]))
        else:
            example(parsed.detection.parsed_condition[0].parsed, body)
        doc = {"@timestamp": "2026-11-02T10:00:00Z", "user": {"id": "pc-1"}, **body}
        raw = orjson.dumps(doc)
        event = validate(decode(raw), raw)
        _, alerts = unit.process("pc-1", [event], None, lambda e=event: e.ts)
        assert any(a.facts["rule_id"] == rule.info.id for a in alerts), (path.name, doc)
        if rule.compiled.anchors:  # and the same event with its tested values changed does not match
            for f, *_ in rule.compiled.anchors:
                _set(doc, f, "zz-not-this")
            raw = orjson.dumps(doc)
            event = validate(decode(raw), raw)
            _, alerts = unit.process("pc-1", [event], None, lambda e=event: e.ts)
            assert not any(a.facts["rule_id"] == rule.info.id for a in alerts), path.name
        checked += 1
    assert checked == 53


def test_okta_regex_filter_excludes_email_logins() -> None:
    rs = _suite().rules
    unit = SigmaRules(RulesHolder(rs), SigmaConfig())
    (rule,) = [r for r in rs.detections if r.info.file.endswith("okta_password_in_alternateid_field.yml")]
    doc = {"@timestamp": "2026-11-02T10:00:00Z", "user": {"id": "pc-1"},
           "okta": {"legacy_event_type": "core.user_auth.login_failed"},
           "custodes": {"identity": {"alias": "someone@force.example"}}}
    raw = orjson.dumps(doc)
    event = validate(decode(raw), raw)
    _, alerts = unit.process("pc-1", [event], None, lambda e=event: e.ts)
    assert not [a for a in alerts if a.facts["rule_id"] == rule.info.id]


def test_specification_correlations_run() -> None:
    rs = _suite().rules
    kinds = sorted((c.type, c.grouped) for c in rs.correlations)
    assert kinds == [("event_count", True), ("event_count", True), ("temporal", False), ("temporal_ordered", False),
                     ("value_avg", False), ("value_count", True), ("value_percentile", True), ("value_sum", False)]
    unit = SigmaRules(RulesHolder(rs), SigmaConfig())
    docs = [{"@timestamp": f"2026-11-02T10:00:0{i}Z", "user": {"id": "pc-1"}, "host": {"name": "ws1"},
             "process": {"name": name}} for i, name in enumerate(["whoami", "net", "nltest"])]
    events = []
    for d in docs:
        raw = orjson.dumps(d)
        events.append(validate(decode(raw), raw))
    _, alerts = unit.process("pc-1", events, None, lambda: events[-1].ts)
    got = sorted(a.facts["correlation"] for a in alerts if "correlation" in a.facts)
    assert got == ["temporal", "temporal_ordered"]


def test_shipped_rules_load_and_pass_their_examples() -> None:
    settings = load_settings(ROOT / "config" / "custodes.toml", env={})
    loaded, results = run_tests(settings)
    assert not loaded.refused, [r.message() for r in loaded.refused]
    assert len(results) == 16
    assert all(r.ok for r in results), [r for r in results if not r.ok]


def test_a_changed_rules_directory_is_reloaded(tmp_path: Path) -> None:
    shutil.copy(ROOT / "config" / "rules" / "anonymous_link_share.yml", tmp_path / "a.yml")
    settings = Rules(dir=tmp_path)
    holder = RulesHolder(load(settings).rules)
    reloader = RulesReloader(holder, settings)
    assert len(holder.current.detections) == 1 and not reloader.check()
    shutil.copy(ROOT / "config" / "rules" / "mail_forward_external.yml", tmp_path / "b.yml")
    settings_ph = Rules(dir=tmp_path, placeholders={"internal_mail_domains": ("@police.uk",)})
    reloader.settings = settings_ph
    assert reloader.check()
    assert len(holder.current.detections) == 2
    (tmp_path / "c.yml").write_text("title: broken\ndetection: [\n")
    assert reloader.check()  # the broken file is refused, the others still run
    assert len(holder.current.detections) == 2


def test_disable_and_level_override(tmp_path: Path) -> None:
    shutil.copy(ROOT / "config" / "rules" / "anonymous_link_share.yml", tmp_path / "a.yml")
    shutil.copy(ROOT / "config" / "rules" / "special_category_external_share.yml", tmp_path / "b.yml")
    rs = load(Rules(dir=tmp_path, disabled=("4f7c2a9e-1d3b-4c8e-9a51-0b6f2d7e8c31",),
                    levels={"8b1e5d40-7c2f-4e6a-b3d9-2f4a6c8e0d17": "critical"})).rules
    (only,) = rs.detections
    assert only.info.level == "critical" and only.info.score == 90.0
    assert rs.disabled == ["4f7c2a9e-1d3b-4c8e-9a51-0b6f2d7e8c31"]


def test_cli_check_and_test() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["rules", "check", str(SUITE)])
    assert result.exit_code == 1
    assert "refused (unknown placeholder): 1" in result.output and "unsupported correlation" not in result.output
    assert "okta_session_impersonation_granted.yml" in result.output and "legtimate_identifiers" in result.output
    result = runner.invoke(main, ["rules", "test"])
    assert result.exit_code == 0, result.output
    assert "16 passed, 0 failed" in result.output
    result = runner.invoke(main, ["rules", "list"])
    assert "Document shared by anonymous link  [config/rules/anonymous_link_share.yml]  (disabled)" in result.output


def test_replay_runs_the_rules_on_the_same_micro_batches(tmp_path: Path) -> None:
    """`custodes replay`: the shipped correlation (5 distinct documents shared out within an hour) fires
    across micro-batches of one event, as in one batch."""
    from stream.offline.replay import replay

    docs = [{"@timestamp": f"2026-11-02T13:{i:02d}:00Z", "user": {"id": "pc-1004"}, "event": {"id": f"s{i}"},
             "custodes": {"activity": "share", "share": {"visibility": "external"}, "object": {"id": f"doc-{i}"}}}
            for i in range(6)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(d) for d in docs))
    results = []
    for batch in (1, 1000):
        settings = load_settings(ROOT / "config" / "custodes.toml", env={}).model_copy(
            update={"batch_max_events": batch, "reference_dir": ROOT / "config" / "reference"})
        result = replay(settings, [path], as_of=datetime(2026, 11, 2, 14, tzinfo=UTC).timestamp())
        assert result.processed == 6
        sigma = sorted((a.facts["rule_id"], a.count) for a in result.alerts.values() if a.detector == "sigma")
        results.append(sigma)
    assert results[0] == results[1]
    assert ("61c0e7b2-9f4d-4b3a-a8e5-7d2c1f0b9e48", 2) in results[0]  # the 5th and 6th document


def test_rules_gauge_follows_reloads(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from stream.detection.rules import rules_gauge

    shutil.copy(ROOT / "config" / "rules" / "repeated_external_shares.yml", tmp_path / "a.yml")
    settings = Rules(dir=tmp_path)
    holder = RulesHolder()
    registry = CollectorRegistry()
    rules_gauge(registry, holder)
    reloader = RulesReloader(holder, settings)
    reloader.seen = ()
    assert reloader.check()
    value = registry.get_sample_value
    assert value("custodes_sigma_rules", {"state": "detection"}) == 1
    assert value("custodes_sigma_rules", {"state": "correlation"}) == 1
    (tmp_path / "b.yml").write_text("title: broken\ndetection: [\n")
    assert reloader.check()
    assert value("custodes_sigma_rules", {"state": "refused"}) == 1


def _brute_force_keys(rs: Any, unit: SigmaRules, event: Any) -> list[str]:
    from detectors.reference import Reference
    from detectors.sigma.document import Doc as SigmaDoc

    doc = SigmaDoc(event.document)
    ctx = unit.context(Reference())
    return sorted(f"r:{r.info.id}" for r in rs.detections if r.alert and r.compiled.matcher(doc, ctx))


_SUITE_RULES: list[Any] = []


def _suite_unit() -> tuple[Any, SigmaRules]:
    if not _SUITE_RULES:
        rs = load(Rules(dir=SUITE, placeholders={"legtimate_identifiers": ("svc-okta",)})).rules
        _SUITE_RULES.append((rs, SigmaRules(RulesHolder(rs), SigmaConfig())))
    return _SUITE_RULES[0]





@hsettings(max_examples=200, deadline=None)
@given(action=st.one_of(st.sampled_from(["user.session.start", "FileDownloaded", "view", "x"]),
                        st.sampled_from(["user.mfa.factor.deactivate", "Add domain to company.", "Set-Mailbox",
                                         "CHANGE_APPLICATION_SETTING", "system.api_token.create"])),
       upper=st.booleans(), provider=st.sampled_from([None, "okta", "Exchange", "admin.googleapis.com"]),
       extra=st.sampled_from([None, {"source": {"ip": "10.0.0.1"}}, {"message": "pwd reset by admin"},
                              {"okta": {"legacy_event_type": "core.user_auth.login_failed"}}]),
       dotted=st.booleans())
def test_the_index_finds_exactly_what_every_rule_run_on_every_event_finds(action, upper, provider, extra,
                                                                           dotted) -> None:
    """The index (event.action from validation, text prefilter, the walk) hides no match and adds
    none, for closed events kept as text and open ones, nested and dotted keys."""
    rs, unit = _suite_unit()
    doc: dict[str, Any] = {"@timestamp": "2026-11-02T10:00:00Z", "user": {"id": "pc-1"}}
    if dotted:
        doc["event.action"] = action.upper() if upper else action
    else:
        doc["event"] = {"action": action.upper() if upper else action}
    if provider:
        doc.setdefault("event", {})["provider"] = provider
    if extra:
        doc.update(extra)
    raw = orjson.dumps(doc)
    from stream.contract.codec import decode as dec
    from stream.contract.codec import validate as val

    for keep in (False, True):
        event = val(dec(raw), raw, keep_doc=keep)
        hits = sorted(h.key for h in unit.hits("pc-1", event, {}, unit.holder.current, event.ts))
        assert hits == _brute_force_keys(rs, unit, event)


def test_a_disabled_correlation_leaves_its_rules_quiet(tmp_path: Path) -> None:
    """The shipped grouped correlation is off by default: the look-up rule it counts raises nothing of
    its own (and is not even run)."""
    settings = load_settings(ROOT / "config" / "custodes.toml", env={})
    rs = load(settings.rules).rules
    (lookup,) = [r for r in rs.detections if r.info.name == "custodes_record_lookup"]
    assert not lookup.alert and not lookup.correlations
    unit = SigmaRules(RulesHolder(rs), SigmaConfig())
    doc = {"@timestamp": "2026-11-02T13:00:00Z", "user": {"id": "pc-1"},
           "custodes": {"activity": "record_access", "record": {"ids": ["nominal-1"]}}}
    raw = orjson.dumps(doc)
    event = validate(decode(raw), raw)
    assert not list(unit.hits("pc-1", event, {}, unit.holder.current, event.ts))
    assert rs.detections.index(lookup) not in rs.index.candidates(SigmaDoc(doc))

