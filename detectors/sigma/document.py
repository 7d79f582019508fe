"""Reading an event's document for Sigma matching: values at a dotted path (nested, dotted keys or
both, lists walked into), all strings (keyword searches), and the document and context a matcher
is called with."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_MISSING: Any = object()


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
        out.append(text_of(doc))
    return out


def text_of(v: Any) -> str:
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
