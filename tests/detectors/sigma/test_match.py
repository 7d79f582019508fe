# ruff: noqa: E501 - the case table reads best one case a line
"""Detection rules: every modifier pySigma parses, full conditions, refusals, and the index."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.types import SigmaString

from detectors.sigma.document import Context, Doc, field_values
from detectors.sigma.values import string_test

from .helpers import detection, ruleset

CTX = Context({"names": ("alice", "bob")}, 1)


def matches(body: str, doc: dict) -> bool:
    rs = ruleset(detection(body))
    assert not rs.refused, [r.message() for r in rs.refused]
    return rs.detections[0].compiled.matcher(Doc(doc), CTX)


CASES = [
    # (detection body, document, expected)
    ("    sel:\n        event.action: FileDownloaded\n    condition: sel", {"event": {"action": "filedownloaded"}}, True),
    ("    sel:\n        event.action: FileDownloaded\n    condition: sel", {"event": {"action": "FileUploaded"}}, False),
    ("    sel:\n        event.action|cased: FileDownloaded\n    condition: sel", {"event": {"action": "filedownloaded"}}, False),
    ("    sel:\n        event.action|cased: FileDownloaded\n    condition: sel", {"event": {"action": "FileDownloaded"}}, True),
    ("    sel:\n        url.original|contains: /admin/\n    condition: sel", {"url": {"original": "https://x/ADMIN/y"}}, True),
    ("    sel:\n        url.original|startswith: https\n    condition: sel", {"url": {"original": "http://x"}}, False),
    ("    sel:\n        file.name|endswith: .XLSX\n    condition: sel", {"file": {"name": "a.xlsx"}}, True),
    ("    sel:\n        file.name: 'rep*2026?.csv'\n    condition: sel", {"file": {"name": "report-2026a.csv"}}, True),
    ("    sel:\n        file.name: 'rep*2026?.csv'\n    condition: sel", {"file": {"name": "report-2026.csv"}}, False),
    ("    sel:\n        message|contains|all:\n            - alpha\n            - beta\n    condition: sel", {"message": "beta then alpha"}, True),
    ("    sel:\n        message|contains|all:\n            - alpha\n            - beta\n    condition: sel", {"message": "alpha only"}, False),
    ("    sel:\n        message|re: '^ab+c$'\n    condition: sel", {"message": "abbbc"}, True),
    ("    sel:\n        message|re: 'AB'\n    condition: sel", {"message": "xaby"}, False),
    ("    sel:\n        message|re|i: 'AB'\n    condition: sel", {"message": "xaby"}, True),
    ("    sel:\n        source.ip|cidr: 10.0.0.0/8\n    condition: sel", {"source": {"ip": "10.2.3.4"}}, True),
    ("    sel:\n        source.ip|cidr: 10.0.0.0/8\n    condition: sel", {"source": {"ip": "11.2.3.4"}}, False),
    ("    sel:\n        source.ip|cidr: '2001:db8::/32'\n    condition: sel", {"source": {"ip": "2001:db8::1"}}, True),
    ("    sel:\n        message|base64: secret\n    condition: sel", {"message": "c2VjcmV0"}, True),
    ("    sel:\n        message|base64offset|contains: secret\n    condition: sel", {"message": "xx IHNlY3JldC yy"}, True),
    ("    sel:\n        process.command_line|windash|contains: ' -enc '\n    condition: sel", {"process": {"command_line": "ps /enc abc"}}, True),
    ("    sel:\n        file.path|exists: true\n    condition: sel", {"file": {"path": "/x"}}, True),
    ("    sel:\n        file.path|exists: false\n    condition: sel", {"file": {"name": "x"}}, True),
    ("    sel:\n        file.path|exists: true\n    condition: sel", {"file": {"path": None}}, False),
    ("    sel:\n        custodes.record.count|gt: 100\n    condition: sel", {"custodes": {"record": {"count": 101}}}, True),
    ("    sel:\n        custodes.record.count|gt: 100\n    condition: sel", {"custodes": {"record": {"count": 100}}}, False),
    ("    sel:\n        custodes.record.count|gte: 100\n    condition: sel", {"custodes": {"record": {"count": "100"}}}, True),
    ("    sel:\n        custodes.record.count|lt: 5\n    condition: sel", {"custodes": {"record": {"count": 4}}}, True),
    ("    sel:\n        custodes.record.count|lte: 5\n    condition: sel", {"custodes": {"record": {"count": 6}}}, False),
    ("    sel:\n        custodes.record.count|neq: 5\n    condition: sel", {"custodes": {"record": {"count": 6}}}, True),
    ("    sel:\n        user.id|fieldref: user.target.id\n    condition: sel", {"user": {"id": "A", "target": {"id": "a"}}}, True),
    ("    sel:\n        user.id|fieldref: user.target.id\n    condition: sel", {"user": {"id": "a", "target": {"id": "b"}}}, False),
    ("    sel:\n        email.from.address|fieldref|endswith: user.domain\n    condition: sel",
     {"email": {"from": {"address": "x@corp.example"}}, "user": {"domain": "corp.example"}}, True),
    ("    sel:\n        user.name|expand: '%names%'\n    condition: sel", {"user": {"name": "Bob"}}, True),
    ("    sel:\n        user.name|expand: '%names%'\n    condition: sel", {"user": {"name": "carol"}}, False),
    ("    sel:\n        user.email|expand|endswith: '@%names%.example'\n    condition: sel", {"user": {"email": "x@alice.example"}}, True),
    ("    sel:\n        '@timestamp|hour': 3\n    condition: sel", {"@timestamp": "2026-01-01T03:15:00Z"}, True),
    ("    sel:\n        '@timestamp|hour': 3\n    condition: sel", {"@timestamp": "2026-01-01T04:15:00Z"}, False),
    ("    sel:\n        custodes.flag: true\n    condition: sel", {"custodes": {"flag": True}}, True),
    ("    sel:\n        custodes.flag: true\n    condition: sel", {"custodes": {"flag": False}}, False),
    ("    sel:\n        custodes.count: 7\n    condition: sel", {"custodes": {"count": 7}}, True),
    ("    sel:\n        custodes.note: null\n    condition: sel", {"custodes": {}}, True),
    ("    sel:\n        custodes.note: null\n    condition: sel", {"custodes": {"note": "x"}}, False),
    ("    keywords:\n        - 'mimikatz'\n    condition: keywords", {"process": {"args": ["a", "MIMIKATZ"]}}, True),
    ("    keywords:\n        - 'mimikatz'\n    condition: keywords", {"process": {"args": ["a"]}}, False),
    # lists of objects, dotted keys
    ("    sel:\n        okta.target.display_name: Admin\n    condition: sel",
     {"okta": {"target": [{"display_name": "x"}, {"display_name": "admin"}]}}, True),
    ("    sel:\n        event.action: x\n    condition: sel", {"event.action": "X"}, True),
    # conditions
    ("    selection_a:\n        event.action: a\n    selection_b:\n        event.action: b\n    condition: 1 of selection_*",
     {"event": {"action": "b"}}, True),
    ("    selection_a:\n        event.action: a\n    selection_b:\n        event.outcome: success\n    condition: all of selection_*",
     {"event": {"action": "a", "outcome": "failure"}}, False),
    ("    selection_a:\n        event.action: a\n    selection_b:\n        event.outcome: success\n    condition: all of them",
     {"event": {"action": "a", "outcome": "success"}}, True),
    ("    sel:\n        event.action: a\n    filter:\n        event.outcome: failure\n    condition: sel and not filter",
     {"event": {"action": "a", "outcome": "failure"}}, False),
    ("    sel:\n        event.action: a\n    filter:\n        event.outcome: failure\n    condition: sel and not filter",
     {"event": {"action": "a"}}, True),
    ("    a:\n        event.action: a\n    b:\n        event.action: b\n    c:\n        event.outcome: success\n"
     "    condition: (a or b) and not c", {"event": {"action": "b", "outcome": "failure"}}, True),
    ("    a:\n        event.action: a\n    b:\n        event.action: b\n    c:\n        event.outcome: success\n"
     "    condition: a or (b and c)", {"event": {"action": "b", "outcome": "failure"}}, False),
    ("    sel:\n        - event.action: a\n        - event.outcome: success\n    condition: sel",
     {"event": {"outcome": "success"}}, True),
    ("    sel:\n        event.action|neq: a\n    condition: sel", {"event": {"action": "b"}}, True),
]


@pytest.mark.parametrize(("body", "doc", "expected"), CASES)
def test_modifiers_and_conditions(body: str, doc: dict, expected: bool) -> None:
    assert matches(body, doc) is expected


@pytest.mark.parametrize(("body", "reason"), [
    ("    sel:\n        ParentImage|contains: x\n    condition: sel", "unmapped field"),
    ("    sel:\n        user.name|expand: '%nobody_defined_this%'\n    condition: sel", "unknown placeholder"),
])
def test_refused_with_field_and_reason(body: str, reason: str) -> None:
    rs = ruleset(detection(body))
    assert not rs.detections
    (refusal,) = rs.refused
    assert refusal.reason == reason
    assert refusal.file == "rule0.yml"
    assert "rule0.yml" in refusal.message() and "11111111" in refusal.message()


def test_unmapped_field_is_named() -> None:
    (refusal,) = ruleset(detection("    sel:\n        ParentImage|contains: x\n    condition: sel")).refused
    assert refusal.field == "ParentImage"


def test_taxonomy_fields_are_mapped_by_logsource() -> None:
    rs = ruleset(detection("    sel:\n        eventType: user.mfa.factor.deactivate\n    condition: sel",
                           ).replace("product: custodes", "product: okta"))
    assert rs.detections[0].compiled.fields == {"event.action"}


def test_index_checks_only_rules_that_can_match() -> None:
    def rule(n: int, body: str) -> str:
        return detection(body).replace("11111111-1111-4111-8111-111111111111", f"11111111-1111-4111-8111-{n:012d}")

    texts = [rule(i, f"    sel:\n        event.action: act{i}\n    condition: sel") for i in range(50)]
    texts.append(rule(50, "    sel:\n        message|contains: zzz\n    condition: sel"))  # by substring
    texts.append(rule(51, "    keywords:\n        - 'mimikatz'\n    condition: keywords"))  # no field: always
    texts.append(rule(52, "    a:\n        event.action: act1\n    b:\n        event.outcome: success\n"
                          "    condition: a and b"))  # the rarer value of the two
    rs = ruleset(*texts)
    assert len(rs.detections) == 53
    assert rs.index.chosen[52] == {("event.action", "act1")}
    assert rs.index.candidates(Doc({"event": {"action": "ACT7"}})) == [7, 51]
    assert rs.index.candidates(Doc({"event": {"action": "act1", "outcome": "success"}})) == [1, 51, 52]
    assert rs.index.candidates(Doc({"event": {"action": "other"}, "message": "xxZZZxx"})) == [50, 51]
    assert rs.index.candidates(Doc({"event": {"action": "other"}})) == [51]
    assert rs.index.candidates(Doc({"event.action": "act3"})) == [3, 51]  # dotted keys: the general reader


def _prefilter_rules():
    def rule(n: int, body: str) -> str:
        return detection(body).replace("11111111-1111-4111-8111-111111111111", f"11111111-1111-4111-8111-{n:012d}")

    return ruleset(rule(1, "    sel:\n        event.action: FileDownloaded\n    condition: sel"),
                   rule(2, "    sel:\n        message|contains: secret plan\n    condition: sel"),
                   rule(3, "    sel:\n        custodes.record.count: 500\n    condition: sel"))


def test_an_event_whose_text_holds_no_needed_value_is_not_decoded() -> None:
    import orjson

    rs = _prefilter_rules()
    # the rule anchored on event.action alone is found from the action validation read, not the text
    assert rs.index.by_action == {"filedownloaded": [0]}
    assert rs.index.action_candidates(["FILEDOWNLOADED"]) == [0]  # case-insensitive, like Sigma
    assert rs.index.action_candidates(["FileUploaded"]) is None
    # a short value (500) is looked for by its field's name: "500" is in nearly every event's text
    assert rs.index.raw_needles == (b'count"', b"secret plan")
    assert not rs.index.may_match(b'{"@timestamp": "2026-05-00T10:00:00Z", "n": 500}')
    assert not rs.index.may_match(b'{"event": {"action": "FileUploaded"}, "message": "nothing"}')
    assert rs.index.may_match(b'{"message": "a SECRET plan"}')
    assert rs.index.may_match(b'{"message": "a \\u0073ecret plan"}')  # an escape: always read
    assert rs.index.may_match(orjson.dumps({"custodes": {"record": {"count": 500}}}))

    keyword = ruleset(detection("    keywords:\n        - 'mimikatz'\n    condition: keywords"))
    assert keyword.index.raw_needles is None  # a rule without an anchor: every event is read


@given(st.dictionaries(st.sampled_from(["event.action", "message", "custodes.record.count", "user.id"]),
                       st.sampled_from(["FileDownloaded", "filedownloaded", "x secret PLAN y", "secret", 500, 50,
                                        "é secret plan", "a\\b", "plain"]),
                       min_size=1))
def test_the_text_prefilter_never_hides_a_candidate(flat: dict) -> None:
    import orjson

    from detectors.sigma.document import Doc as SigmaDoc

    rs = _prefilter_rules()
    nested: dict = {}
    for path, value in flat.items():
        node = nested
        *parents, last = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    for doc in (nested, flat):  # nested and dotted keys
        if rs.index.candidates(SigmaDoc(doc)):
            assert rs.index.action_candidates(field_values(doc, "event.action")) or rs.index.may_match(orjson.dumps(doc))


def test_not_is_never_an_anchor() -> None:
    rs = ruleset(detection("    sel:\n        event.action: a\n    condition: not sel"))
    assert rs.detections[0].compiled.anchors is None
    assert rs.index.candidates(Doc({"event": {"action": "b"}})) == [0]


def test_field_values_walks_lists_and_dotted_keys() -> None:
    doc = {"a": [{"b": 1}, {"b": [2, 3]}], "c.d": {"e": "x"}}
    assert field_values(doc, "a.b") == [1, 2, 3]
    assert field_values(doc, "c.d.e") == ["x"]
    assert field_values(doc, "missing") == []


# -- differential: our wildcard matching against pySigma's own regular expression of the string ----

_alphabet = st.sampled_from(list("abAB.*?\\-x"))


@settings(max_examples=300, deadline=None)
@given(pattern=st.text(_alphabet, min_size=1, max_size=8), value=st.text(st.sampled_from(list("abAB.-x*?")), max_size=10))
def test_wildcards_agree_with_pysigma_regex(pattern: str, value: str) -> None:
    s = SigmaString(pattern)
    theirs = re.compile(str(s.to_regex().regexp), re.IGNORECASE | re.DOTALL)
    assert string_test(s, cased=False)(value) == (theirs.fullmatch(value) is not None)


def test_reference_placeholders_follow_reference_updates_without_reload() -> None:
    from detectors.reference import Reference, ReferenceHolder
    from detectors.sigma import SigmaConfig, SigmaRules

    from ..helpers import T0, ev

    rs = ruleset(detection("    sel:\n        user.id|expand: '%leavers%'\n    condition: sel"),
                 placeholders=("leavers",))
    holder = ReferenceHolder(Reference())
    unit = SigmaRules(rs, SigmaConfig(), holder)
    event = ev("pc-9", T0, doc={"user": {"id": "pc-9"}})
    assert not unit.process("pc-9", [event], None, lambda: T0)[1]
    holder.apply("staff", {"user_id": "pc-9", "leave_date": "2026-01-31"})
    (alert,) = unit.process("pc-9", [ev("pc-9", T0 + 1, doc={"user": {"id": "pc-9"}})], None, lambda: T0)[1]
    assert alert.facts["rule_id"] == "11111111-1111-4111-8111-111111111111"
