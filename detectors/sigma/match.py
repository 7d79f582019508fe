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

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    Placeholder,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaRegularExpression,
    SigmaString,
)

from .document import Context, Doc, Matcher, text_of
from .values import (
    Unsupported,
    anchor_of,
    value_test,
)


def leaf(field_name: str | None, value: Any) -> Matcher:
    if isinstance(value, SigmaExpansion):
        subs = [leaf(field_name, v) for v in value.values]
        return lambda d, c: any(m(d, c) for m in subs)
    if field_name is None:
        if isinstance(value, SigmaExists | SigmaFieldReference | SigmaNull):
            raise Unsupported(None, f"{type(value).__name__} without a field")
        if has_placeholder(value):
            return placeholder_leaf(None, value)
        test = value_test(None, value)
        return lambda d, c: any(test(v) for v in d.strings())
    if isinstance(value, SigmaNull):
        return lambda d, c: all(v is None for v in d.get(field_name))
    if isinstance(value, SigmaExists):
        want = bool(value.exists)
        return lambda d, c: any(v is not None for v in d.get(field_name)) is want
    if isinstance(value, SigmaFieldReference):
        other, starts, ends = value.field, value.starts_with, value.ends_with

        def test_ref(d: Doc, c: Context) -> bool:
            mine = [text_of(v).lower() for v in d.get(field_name) if v is not None]
            theirs = [text_of(v).lower() for v in d.get(other) if v is not None]
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
    if has_placeholder(value):
        return placeholder_leaf(field_name, value)
    test = value_test(field_name, value)

    def test_field(d: Doc, c: Context) -> bool:
        for v in d.get(field_name):  # noqa: SIM110 - a plain loop is cheaper than any() on the hot path
            if test(v):
                return True
        return False
    return test_field


def has_placeholder(value: Any) -> bool:
    if isinstance(value, SigmaString):
        return value.contains_placeholder()
    if isinstance(value, SigmaRegularExpression):
        return value.contains_placeholder()
    return False


def placeholder_names(value: Any) -> list[str]:
    s = value.regexp if isinstance(value, SigmaRegularExpression) else value
    return [p.name for p in s.s if isinstance(p, Placeholder)] if isinstance(s, SigmaString) else []


def placeholder_leaf(field_name: str | None, value: Any) -> Matcher:
    """``expand``: the placeholders replaced by every value of their list (pySigma's own
    ``replace_placeholders``), compiled per list version."""
    cache: dict[Any, Callable[[Any], bool]] = {}

    def compiled(c: Context) -> Callable[[Any], bool]:
        got = cache.get(c.version)
        if got is None:
            def values(p: Placeholder) -> Iterable[str]:
                return iter(c.placeholders.get(p.name, ()))
            expanded = value.replace_placeholders(values)
            tests = [value_test(field_name, v) for v in expanded]
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
            anchor = anchor_of(node.field, node.value)
            return leaf(node.field, node.value), (("v", anchor) if anchor is not None else None)
        if isinstance(node, ConditionValueExpression):
            names.update(placeholder_names(node.value))
            return leaf(None, node.value), None
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
