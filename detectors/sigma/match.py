"""Matching events against Sigma detection rules, on pySigma's parsed rule model. Pure: no files.

pySigma parses a rule (modifiers applied, the condition parsed into a tree of
``ConditionAND``/``ConditionOR``/``ConditionNOT`` over ``ConditionFieldEqualsValueExpression`` and
``ConditionValueExpression`` leaves); it converts rules to queries but does not match events. This
module compiles that tree into Python closures over an event's validated document:

- field names are dotted paths (``event.action``) looked up in nested objects, dotted keys or both;
  a list on the way (``okta.target`` is a list of objects) gives every element's value, and a
  field with several values matches when any does (ECS arrays);
- strings match case-insensitively unless ``cased``; wildcards ``*`` and ``?``; ``re`` is a Python
  regular expression *searched* in the value (PCRE semantics: anchors ``^``/``$`` when wanted),
  case-sensitive unless ``|i``;
- numbers match numbers or their decimal text; ``lt``/``lte``/``gt``/``gte``/``neq`` compare numbers
  (numeric text accepted); ``cidr`` an IPv4/IPv6 address; ``exists`` a present, non-null field;
  ``fieldref`` the value of another field of the same event; ``minute``..``year`` a part of a
  timestamp (ISO text or POSIX seconds); null: absent or null;
- ``expand``: a ``%name%`` placeholder is replaced at match time by every value of a named list
  (reference data or site configuration, :class:`Context`), so an update to the register applies
  without reloading the rules;
- keyword (field-less) values are searched in every string of the document.

Anything else the model may hold (a backend query expression, a type unknown here) raises
:class:`Unsupported` naming the field and the feature, so a rule is refused whole, never half-matched.

Each compiled rule also has its *anchors*: (field, lower-cased value) pairs of which an event must
have one to possibly match (from plain equality leaves under AND/OR, never under NOT).
:class:`Index` uses them so an event is checked only against the rules it can match.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)

_MISSING: Any = object()


class Unsupported(ValueError):
    """A rule uses something this engine does not evaluate. ``field`` and ``feature`` say what."""

    def __init__(self, field_name: str | None, feature: str) -> None:
        where = f"field {field_name!r}" if field_name else "keyword search"
        super().__init__(f"{where}: {feature}")
        self.field = field_name
        self.feature = feature


# -- reading an event's document ------------------------------------------------------------------


_PARTS_OF: dict[str, list[str]] = {}


def field_values(doc: Any, path: str) -> list[Any]:
    """Every value at ``path`` (dotted): nested objects, dotted keys or a mixture, lists walked into.
    A list value contributes its items. Empty when absent; ``[None]`` when present and null."""
    parts = _PARTS_OF.get(path)
    if parts is None:
        parts = path.split(".")
        if len(_PARTS_OF) < 65536:
            _PARTS_OF[path] = parts
    node = doc
    for i, part in enumerate(parts):  # the usual case: nested objects, no list on the way
        if type(node) is dict:
            nxt = node.get(part, _MISSING)
            if nxt is not _MISSING:
                node = nxt
                continue
            for key in node:
                if "." in key:  # dotted keys at this level: every way of reading the rest
                    out: list[Any] = []
                    _collect(node, parts, i, out)
                    return out
            return []
        if type(node) is list:
            out = []
            _collect(node, parts, i, out)
            return out
        return []
    if type(node) is list:
        return list(node)
    return [node]


def _collect(node: Any, parts: list[str], i: int, out: list[Any]) -> None:
    if i == len(parts):
        if type(node) is list:
            out.extend(node)
        else:
            out.append(node)
        return
    t = type(node)
    if t is dict:
        n = len(parts)
        for j in range(n, i, -1):  # the longest dotted key first
            key = parts[i] if j == i + 1 else ".".join(parts[i:j])
            if key in node:
                _collect(node[key], parts, j, out)
    elif t is list:
        for item in node:
            if type(item) in (dict, list):
                _collect(item, parts, i, out)


def all_strings(doc: Any, out: list[str] | None = None) -> list[str]:
    """Every scalar of the document as text (for keyword search)."""
    if out is None:
        out = []
    t = type(doc)
    if t is dict:
        for v in doc.values():
            all_strings(v, out)
    elif t is list:
        for v in doc:
            all_strings(v, out)
    elif t is str:
        out.append(doc)
    elif doc is not None:
        out.append(_text(doc))
    return out


def _text(v: Any) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    return v if type(v) is str else str(v)


class Doc:
    """One event's document with its field values cached for the rules checked against it."""

    __slots__ = ("doc", "cache", "_strings")

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self.cache: dict[str, list[Any]] = {}
        self._strings: list[str] | None = None

    def get(self, path: str) -> list[Any]:
        got = self.cache.get(path)
        if got is None:
            got = self.cache[path] = field_values(self.doc, path)
        return got

    def strings(self) -> list[str]:
        if self._strings is None:
            self._strings = all_strings(self.doc)
        return self._strings


@dataclass
class Context:
    """What a match needs besides the event: placeholder lists (``%name%`` of ``expand``), by name.
    ``version`` changes whenever a list does (matchers cache their expansion per version)."""

    placeholders: Mapping[str, Sequence[str]] = field(default_factory=dict)
    version: Any = 0


Matcher = Callable[[Doc, Context], bool]
"""An event (document) -> does the (sub)condition hold."""
ValueTest = Callable[[Any], bool]
"""One value of a field -> does it match."""


# -- strings ----------------------------------------------------------------------------------------


def _string_test(s: SigmaString, cased: bool) -> ValueTest:
    """A test of one field value against a Sigma string (wildcards, case)."""
    parts = s.s
    plain = [p for p in parts if isinstance(p, str)]
    specials = [p for p in parts if isinstance(p, SpecialChars)]
    if any(isinstance(p, Placeholder) for p in parts):  # callers resolve placeholders first
        raise Unsupported(None, "unresolved placeholder")
    fold = (lambda x: x) if cased else str.lower
    if not specials:
        want = fold("".join(plain))
        if cased:
            return lambda v: _text(v) == want if v is not None else False
        return lambda v: v is not None and _text(v).lower() == want
    multi = SpecialChars.WILDCARD_MULTI
    if all(p is multi for p in specials) and len(plain) == 1:
        text = fold(plain[0])
        starts = parts[0] is multi
        ends = parts[-1] is multi
        if starts and ends and len(parts) == 3:
            return lambda v: v is not None and text in fold(_text(v))
        if ends and len(parts) == 2:
            return lambda v: v is not None and fold(_text(v)).startswith(text)
        if starts and len(parts) == 2:
            return lambda v: v is not None and fold(_text(v)).endswith(text)
    if all(p is multi for p in parts):
        return lambda v: v is not None
    rx = re.compile(_wildcard_regex(s), re.DOTALL | (0 if cased else re.IGNORECASE))
    return lambda v: v is not None and rx.fullmatch(_text(v)) is not None


def _wildcard_regex(s: SigmaString) -> str:
    out = []
    for p in s.s:
        if isinstance(p, str):
            out.append(re.escape(p))
        elif p is SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        else:
            out.append(".")
    return "".join(out)


SUBSTRING_MIN = 3
"""A wildcard string is indexed by its longest literal part when that part has at least this many
characters (shorter ones would make the rule a candidate for most events anyway)."""


def _anchor_of(field_name: str, value: Any) -> tuple[str, ...] | None:
    """What an event's field must hold for the leaf to match: ``(field, text)`` when it must equal
    ``text`` (lower-cased: a plain string or a number), ``(field, text, "s")`` when it must contain
    it (the longest literal part of a wildcard string), or None."""
    if isinstance(value, SigmaString) and not isinstance(value, SigmaRegularExpression):
        if all(isinstance(p, str) for p in value.s):
            return (field_name, "".join(value.s).lower())  # type: ignore[arg-type]
        if any(isinstance(p, Placeholder) for p in value.s):
            return None
        longest = max((p for p in value.s if isinstance(p, str)), key=len, default="")
        if len(longest) >= SUBSTRING_MIN:
            return (field_name, longest.lower(), "s")
        return None
    if isinstance(value, SigmaNumber) and not isinstance(value, SigmaTimestampPart):
        return (field_name, str(value.number).lower())
    return None


# -- leaves ----------------------------------------------------------------------------------------

_RE_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}

_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


def _number(v: Any) -> float | None:
    t = type(v)
    if t is int or t is float:
        return v
    if t is str:
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _timestamp(v: Any) -> datetime | None:
    t = type(v)
    try:
        if t is int or t is float:
            return datetime.fromtimestamp(v, UTC)
        if t is str:
            when = datetime.fromisoformat(v)
            return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


_PARTS: dict[TimestampPart, Callable[[datetime], int]] = {
    TimestampPart.MINUTE: lambda d: d.minute,
    TimestampPart.HOUR: lambda d: d.hour,
    TimestampPart.DAY: lambda d: d.day,
    TimestampPart.WEEK: lambda d: d.isocalendar()[1],
    TimestampPart.MONTH: lambda d: d.month,
    TimestampPart.YEAR: lambda d: d.year,
}


def _value_test(field_name: str | None, value: Any) -> ValueTest:
    """A test of one field value against one Sigma value (no placeholders, no field reference)."""
    if isinstance(value, SigmaString):
        return _string_test(value, isinstance(value, SigmaCasedString))
    if isinstance(value, SigmaTimestampPart):
        part, number = _PARTS[value.timestamp_part], value.number

        def test_part(v: Any) -> bool:
            when = _timestamp(v)
            return when is not None and part(when) == number
        return test_part
    if isinstance(value, SigmaBool):
        want_bool = bool(value.boolean)
        text = "true" if want_bool else "false"
        return lambda v: v is want_bool or (type(v) is str and v.lower() == text)
    if isinstance(value, SigmaNumber):
        num = value.number
        text = str(num)
        return lambda v: (type(v) in (int, float) and v == num) or (type(v) is str and v == text)
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for f in value.flags:
            flags |= _RE_FLAGS[f]
        if value.regexp.contains_placeholder():
            raise Unsupported(field_name, "unresolved placeholder in a regular expression")
        try:
            rx = re.compile(str(value.regexp), flags)
        except re.error as exc:
            raise Unsupported(field_name, f"regular expression not supported by Python re ({exc})") from None
        return lambda v: v is not None and rx.search(_text(v)) is not None
    if isinstance(value, SigmaCIDRExpression):
        net = value.network

        def test_cidr(v: Any) -> bool:
            if type(v) is not str:
                return False
            try:
                return ipaddress.ip_address(v) in net
            except ValueError:
                return False
        return test_cidr
    if isinstance(value, SigmaCompareExpression):
        op, limit = _COMPARE[value.op], value.number.number

        def test_compare(v: Any) -> bool:
            n = _number(v) if type(v) is not bool else None
            return n is not None and op(n, limit)
        return test_compare
    raise Unsupported(field_name, f"value type {type(value).__name__} ({value!r:.80})")


def _leaf(field_name: str | None, value: Any) -> Matcher:
    if isinstance(value, SigmaExpansion):
        subs = [_leaf(field_name, v) for v in value.values]
        return lambda d, c: any(m(d, c) for m in subs)
    if field_name is None:
        if isinstance(value, SigmaExists | SigmaFieldReference | SigmaNull):
            raise Unsupported(None, f"{type(value).__name__} without a field")
        if _has_placeholder(value):
            return _placeholder_leaf(None, value)
        test = _value_test(None, value)
        return lambda d, c: any(test(v) for v in d.strings())
    if isinstance(value, SigmaNull):
        return lambda d, c: all(v is None for v in d.get(field_name))
    if isinstance(value, SigmaExists):
        want = bool(value.exists)
        return lambda d, c: any(v is not None for v in d.get(field_name)) is want
    if isinstance(value, SigmaFieldReference):
        other, starts, ends = value.field, value.starts_with, value.ends_with

        def test_ref(d: Doc, c: Context) -> bool:
            mine = [_text(v).lower() for v in d.get(field_name) if v is not None]
            theirs = [_text(v).lower() for v in d.get(other) if v is not None]
            for a in mine:
                for b in theirs:
                    if starts and ends:
                        if b in a:
                            return True
                    elif starts:
                        if a.startswith(b):
                            return True
                    elif ends:
                        if a.endswith(b):
                            return True
                    elif a == b:
                        return True
            return False
        return test_ref
    if _has_placeholder(value):
        return _placeholder_leaf(field_name, value)
    test = _value_test(field_name, value)

    def test_field(d: Doc, c: Context) -> bool:
        for v in d.get(field_name):  # noqa: SIM110 - a plain loop is cheaper than any() on the hot path
            if test(v):
                return True
        return False
    return test_field


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, SigmaString):
        return value.contains_placeholder()
    if isinstance(value, SigmaRegularExpression):
        return value.contains_placeholder()
    return False


def placeholder_names(value: Any) -> list[str]:
    s = value.regexp if isinstance(value, SigmaRegularExpression) else value
    return [p.name for p in s.s if isinstance(p, Placeholder)] if isinstance(s, SigmaString) else []


def _placeholder_leaf(field_name: str | None, value: Any) -> Matcher:
    """``expand``: the placeholders replaced by every value of their list (pySigma's own
    ``replace_placeholders``), compiled per list version."""
    cache: dict[Any, Callable[[Any], bool]] = {}

    def compiled(c: Context) -> Callable[[Any], bool]:
        got = cache.get(c.version)
        if got is None:
            def values(p: Placeholder) -> Iterable[str]:
                return iter(c.placeholders.get(p.name, ()))
            expanded = value.replace_placeholders(values)
            tests = [_value_test(field_name, v) for v in expanded]
            cache.clear()
            got = cache[c.version] = (lambda v: any(t(v) for t in tests)) if tests else (lambda v: False)
        return got

    if field_name is None:
        return lambda d, c: any(compiled(c)(v) for v in d.strings())

    def test(d: Doc, c: Context) -> bool:
        t = compiled(c)
        return any(t(v) for v in d.get(field_name))
    return test


# -- the condition tree ------------------------------------------------------------------------------


AnchorTree = Any
"""None (no value an event must have), ``("v", (field, value))``, ``("and", [trees])`` (any child's
values suffice) or ``("or", [trees])`` (every child's values are needed)."""


ACTION = "event.action"
"""The field most rules test first, and that validation reads into :attr:`Event.action`."""

SUBSTRING_COST = 1000
"""A substring test is checked against every event that has the field: prefer an equality anchor."""


def choose_anchors(tree: AnchorTree, freq: Mapping[tuple[str, ...], int] | None = None
                   ) -> frozenset[tuple[str, ...]] | None:
    """The (field, value) pairs of which a matching event must have one, chosen so they are as rare
    as possible: a value tested by few rules, of a field tested with many different values (an
    ``event.action``, not an ``event.outcome: success``). ``freq``: how many rules test each pair. An
    AND takes its cheapest child, an OR needs all of its children's."""
    if tree is None:
        return None
    freq = freq or {}
    distinct: dict[str, int] = {}
    for atom in freq:
        distinct[atom[0]] = distinct.get(atom[0], 0) + 1

    def best(t: AnchorTree) -> tuple[int, frozenset[tuple[str, str]]]:
        kind, arg = t
        if kind == "v":
            cost = freq.get(arg, 1) / distinct.get(arg[0], 1)
            return (cost + SUBSTRING_COST if len(arg) == 3 else cost), frozenset((arg,))
        if kind == "and":
            return min((best(c) for c in arg), key=lambda cs: cs[0])
        cost, out = 0, frozenset()
        for c in arg:
            k, got = best(c)
            cost += k
            out |= got
        return cost, out

    return best(tree)[1]


def anchor_atoms(tree: AnchorTree) -> set[tuple[str, str]]:
    if tree is None:
        return set()
    kind, arg = tree
    if kind == "v":
        return {arg}
    out: set[tuple[str, str]] = set()
    for c in arg:
        out |= anchor_atoms(c)
    return out


@dataclass
class Compiled:
    matcher: Matcher
    anchor_tree: AnchorTree
    fields: frozenset[str]
    placeholders: frozenset[str]

    @property
    def anchors(self) -> frozenset[tuple[str, str]] | None:
        """(field, lower-cased value) pairs of which a matching event has one; None: no such set."""
        return choose_anchors(self.anchor_tree)


def compile_condition(tree: Any) -> Compiled:
    """A pySigma condition tree (``SigmaRule.detection.parsed_condition[i].parsed``) -> Compiled."""
    fields: set[str] = set()
    names: set[str] = set()

    def walk(node: Any) -> tuple[Matcher, AnchorTree]:
        if isinstance(node, ConditionAND):
            subs = [walk(a) for a in node.args]
            ms = [m for m, _ in subs]
            anchored = [a for _, a in subs if a is not None]
            tree = ("and", anchored) if anchored else None
            if len(ms) == 2:
                m1, m2 = ms
                return (lambda d, c: m1(d, c) and m2(d, c)), tree
            return (lambda d, c: all(m(d, c) for m in ms)), tree
        if isinstance(node, ConditionOR):
            subs = [walk(a) for a in node.args]
            ms = [m for m, _ in subs]
            trees = [a for _, a in subs]
            return (lambda d, c: any(m(d, c) for m in ms)), (None if any(t is None for t in trees) else ("or", trees))
        if isinstance(node, ConditionNOT):
            m, _ = walk(node.args[0])
            return (lambda d, c: not m(d, c)), None
        if isinstance(node, ConditionFieldEqualsValueExpression):
            fields.add(node.field)
            if isinstance(node.value, SigmaFieldReference):
                fields.add(node.value.field)
            names.update(placeholder_names(node.value))
            anchor = _anchor_of(node.field, node.value)
            return _leaf(node.field, node.value), (("v", anchor) if anchor is not None else None)
        if isinstance(node, ConditionValueExpression):
            names.update(placeholder_names(node.value))
            return _leaf(None, node.value), None
        raise Unsupported(None, f"condition element {type(node).__name__}")

    matcher, anchors = walk(tree)
    return Compiled(matcher, anchors, frozenset(fields), frozenset(names))


def compile_conditions(trees: Sequence[Any]) -> Compiled:
    """A rule's conditions (a list: any of them)."""
    parts = [compile_condition(t) for t in trees]
    if len(parts) == 1:
        return parts[0]
    ms = [p.matcher for p in parts]
    anchor_trees = [p.anchor_tree for p in parts]
    tree = None if any(t is None for t in anchor_trees) else ("or", anchor_trees)
    return Compiled(lambda d, c: any(m(d, c) for m in ms), tree,
                    frozenset().union(*(p.fields for p in parts)),
                    frozenset().union(*(p.placeholders for p in parts)))


# -- the index ---------------------------------------------------------------------------------------


class Index:
    """Rules by the values they need; an event is checked only against the rules one of whose values
    it has (a field equal to a value, or containing a literal part of a wildcard string), and the
    rules with none (keyword searches, regular expressions, negations only). Each rule's anchors are
    the rarest its condition allows (:func:`choose_anchors`, by how many rules test each value;
    equality before substrings). The indexed fields are read in one walk of the document (a trie of
    their paths).

    Rules whose anchors are all ``event.action`` equalities (most SigmaHQ cloud rules: an Okta
    ``eventType``, an M365 ``Operation``, a Workspace ``eventName``) are kept apart in
    :attr:`by_action`: their candidates come from the event's action, which validation has already
    read (:attr:`Event.action`), so an event whose action no rule names, and whose text holds none of
    the other rules' values, is neither decoded nor walked (:meth:`SigmaRules.hits`)."""

    def __init__(self, compiled: Sequence[Compiled], skip: Iterable[int] = ()) -> None:
        """``skip``: rules never to run (quiet rules of a disabled correlation)."""
        skipped = frozenset(skip)
        freq: dict[tuple[str, ...], int] = {}
        for c in compiled:
            for atom in anchor_atoms(c.anchor_tree):
                freq[atom] = freq.get(atom, 0) + 1
        equal: dict[str, dict[str, list[int]]] = {}
        contain: dict[str, dict[str, list[int]]] = {}
        self.always: list[int] = []
        self.chosen: list[frozenset[tuple[str, ...]] | None] = []
        self.by_action: dict[str, list[int]] = {}
        """Lower-cased ``event.action`` -> the rules anchored on it alone."""
        for i, c in enumerate(compiled):
            if i in skipped:
                self.chosen.append(frozenset())
                continue
            anchors = choose_anchors(c.anchor_tree, freq)
            self.chosen.append(anchors)
            if anchors is None:
                self.always.append(i)
                continue
            if all(len(a) == 2 and a[0] == ACTION for a in anchors):
                for atom in anchors:
                    self.by_action.setdefault(atom[1], []).append(i)
                continue
            for atom in anchors:
                table = contain if len(atom) == 3 else equal
                table.setdefault(atom[0], {}).setdefault(atom[1], []).append(i)
        self.fields: tuple[tuple[str, dict[str, list[int]], tuple[tuple[str, list[int]], ...]], ...] = tuple(
            (f, equal.get(f, {}), tuple(contain.get(f, {}).items())) for f in sorted(set(equal) | set(contain)))
        literals = {_needle(f, v) for f, table, needles in self.fields for v in (*table, *(n for n, _ in needles))}
        self.raw_needles: tuple[bytes, ...] | None = (
            tuple(sorted(v.encode() for v in literals))
            if not self.always and all(v.isascii() and v for v in literals) else None
        )
        """Every value the indexed rules other than :attr:`by_action`'s need, as bytes: an event whose
        JSON text holds none of them (compared in lower case) cannot match one of those, and unless
        its action is in :attr:`by_action` is not decoded at all. None when some rule has no anchor or
        a value is not plain ASCII (then every event is read)."""
        self._needle_rx = re.compile(_trie_pattern(self.raw_needles)) if self.raw_needles else None
        """The needles as one regular expression, factored as a trie (``dis(?:able|k)``): one search of
        the text finds any of them (with 140 needles, ~20 times cheaper than a search per needle)."""
        self.walks = bool(self.fields) or bool(self.always)
        """Whether any rule needs the document read (else :attr:`by_action` says everything)."""
        self.trie: dict[str, Any] = {}
        for entry in self.fields:
            f = entry[0]
            node = self.trie
            parts = f.split(".")
            for p in parts[:-1]:
                nxt = node.get(p)
                if not isinstance(nxt, dict):
                    nxt = node[p] = {} if nxt is None else {_LEAF: nxt}
                node = nxt
            last = node.get(parts[-1])
            if isinstance(last, dict):
                last[_LEAF] = entry
            else:
                node[parts[-1]] = entry

    def may_match(self, raw: bytes) -> bool:
        """False only when the event's JSON text cannot hold a value any rule needs. Text with a
        backslash (an escape could spell a value differently) is always read."""
        if self.raw_needles is None or b"\\" in raw:
            return True
        rx = self._needle_rx
        return rx is not None and rx.search(raw.lower()) is not None

    def action_candidates(self, actions: Iterable[Any]) -> list[int] | None:
        """The :attr:`by_action` rules the event's ``event.action`` values name (None: none)."""
        by_action = self.by_action
        if not by_action:
            return None
        found = None
        for v in actions:
            if v is None:
                continue
            hit = by_action.get(v.lower() if type(v) is str else _text(v).lower())
            if hit:
                found = hit if found is None else sorted({*found, *hit})
        return found

    def candidates(self, doc: Doc, actions: Iterable[Any] | None = None) -> list[int]:
        """Indexes of the rules that may match, ascending (rule order). ``actions``: the event's
        ``event.action`` values when the caller knows them (else read from ``doc``)."""
        by_action = None
        if self.by_action:
            by_action = self.action_candidates(doc.get(ACTION) if actions is None else actions)
        if not self.walks:
            return by_action or []
        found: set[int] = set(by_action) if by_action else set()
        if not _walk_trie(doc.doc, self.trie, doc.cache, found):
            # dotted keys somewhere on the way: read each indexed field the general way
            found = set(by_action) if by_action else set()
            cache, d = doc.cache, doc.doc
            for f, table, needles in self.fields:
                values = cache.get(f)
                if values is None:
                    values = cache[f] = field_values(d, f)
                _hits(values, table, needles, found)
        if not found:
            return self.always
        if self.always:
            found.update(self.always)
        return sorted(found)


_LEAF = "\x00"

def _trie_pattern(needles: Iterable[bytes]) -> bytes:
    """A regular expression matching any of ``needles`` (literals), factored by common prefixes, so the
    engine follows one branch per byte instead of trying every alternative at every position."""
    root: dict[int, Any] = {}
    for n in needles:
        node = root
        for b in n:
            node = node.setdefault(b, {})
        node[-1] = {}  # a needle ends here

    def emit(node: dict[int, Any]) -> bytes:
        ends = -1 in node
        branches = [re.escape(bytes([b])) + emit(sub) for b, sub in sorted(node.items()) if b != -1]
        if not branches:
            return b""
        if ends:  # a shorter needle ends here: anything further is optional (the shorter one suffices)
            return b""
        if len(branches) == 1:
            return branches[0]
        return b"(?:" + b"|".join(branches) + b")"

    return emit(root)


NEEDLE_MIN = 4
"""A tested value shorter than this (``3``, ``500``), or a JSON literal (``true``), is found in nearly
every event's text: the text prefilter looks for its field's name instead (:func:`_needle`)."""


def _needle(field_name: str, value: str) -> str:
    """What an event's JSON text (lower-cased) must contain for ``field_name`` to hold ``value``: the
    value itself, or, for a short value, the field's last name and the quote closing it (``type"``:
    in a nested ``"type":`` key and at the end of a dotted ``"onelogin.event.type":`` key alike)."""
    if len(value) >= NEEDLE_MIN and value not in ("true", "false", "null"):
        return value
    return field_name.rsplit(".", 1)[-1].lower() + '"'


def _hits(values: list[Any], table: dict[str, list[int]], needles: tuple[tuple[str, list[int]], ...],
          found: set[int]) -> None:
    for v in values:
        if v is None:
            continue
        text = v.lower() if type(v) is str else _text(v).lower()
        hit = table.get(text)
        if hit:
            found.update(hit)
        for needle, ids in needles:
            if needle in text:
                found.update(ids)


def _walk_trie(node: Any, trie: dict[str, Any], cache: dict[str, list[Any]], found: set[int]) -> bool:
    """Look the indexed fields up in one walk over the document's own keys (checking each for a dot
    on the way); False (give up) at a level with dotted keys or a list of objects on the way (the
    general reader handles those)."""
    get = trie.get
    for key, value in node.items():
        sub = get(key)
        if sub is None:
            if "." in key:
                return False
            continue
        if type(sub) is tuple:
            f, table, needles = sub
            values = list(value) if type(value) is list else [value]
            cache[f] = values
            _hits(values, table, needles, found)
            continue
        leaf = sub.get(_LEAF)
        if leaf is not None:
            f, table, needles = leaf
            values = list(value) if type(value) is list else [value]
            cache[f] = values
            _hits(values, table, needles, found)
        t = type(value)
        if t is dict:
            if not _walk_trie(value, sub, cache, found):
                return False
        elif t is list and any(type(x) in (dict, list) for x in value):
            return False
    return True
