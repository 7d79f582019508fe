"""Which rules an event can match: each rule's rarest anchors (field values, literal parts of
wildcards, ``event.action``) index the rules, and one trie-shaped search of the raw text rejects most
events before they are decoded (:class:`Index`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from .document import Doc, field_values, text_of
from .match import ACTION, Compiled, anchor_atoms, choose_anchors

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
            hit = by_action.get(v.lower() if type(v) is str else text_of(v).lower())
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
        text = v.lower() if type(v) is str else text_of(v).lower()
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
