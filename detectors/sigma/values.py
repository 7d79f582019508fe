"""One field value against one Sigma value: strings with wildcards and case, regular expressions,
CIDR, numbers and timestamps compared; the literal anchors an index can use; and what is refused."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)

from .document import ValueTest, text_of


class Unsupported(ValueError):
    """A rule uses something this engine does not evaluate. ``field`` and ``feature`` say what."""

    def __init__(self, field_name: str | None, feature: str) -> None:
        where = f"field {field_name!r}" if field_name else "keyword search"
        super().__init__(f"{where}: {feature}")
        self.field = field_name
        self.feature = feature


# -- strings ----------------------------------------------------------------------------------------


def string_test(s: SigmaString, cased: bool) -> ValueTest:
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
            return lambda v: text_of(v) == want if v is not None else False
        return lambda v: v is not None and text_of(v).lower() == want
    multi = SpecialChars.WILDCARD_MULTI
    if all(p is multi for p in specials) and len(plain) == 1:
        text = fold(plain[0])
        starts = parts[0] is multi
        ends = parts[-1] is multi
        if starts and ends and len(parts) == 3:
            return lambda v: v is not None and text in fold(text_of(v))
        if ends and len(parts) == 2:
            return lambda v: v is not None and fold(text_of(v)).startswith(text)
        if starts and len(parts) == 2:
            return lambda v: v is not None and fold(text_of(v)).endswith(text)
    if all(p is multi for p in parts):
        return lambda v: v is not None
    rx = re.compile(wildcard_regex(s), re.DOTALL | (0 if cased else re.IGNORECASE))
    return lambda v: v is not None and rx.fullmatch(text_of(v)) is not None


def wildcard_regex(s: SigmaString) -> str:
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


def anchor_of(field_name: str, value: Any) -> tuple[str, ...] | None:
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

RE_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}

COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


def number_of(v: Any) -> float | None:
    t = type(v)
    if t is int or t is float:
        return v
    if t is str:
        try:
            return float(v)
        except ValueError:
            return None
    return None


def timestamp_of(v: Any) -> datetime | None:
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


def value_test(field_name: str | None, value: Any) -> ValueTest:
    """A test of one field value against one Sigma value (no placeholders, no field reference)."""
    if isinstance(value, SigmaString):
        return string_test(value, isinstance(value, SigmaCasedString))
    if isinstance(value, SigmaTimestampPart):
        part, number = _PARTS[value.timestamp_part], value.number

        def test_part(v: Any) -> bool:
            when = timestamp_of(v)
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
            flags |= RE_FLAGS[f]
        if value.regexp.contains_placeholder():
            raise Unsupported(field_name, "unresolved placeholder in a regular expression")
        try:
            rx = re.compile(str(value.regexp), flags)
        except re.error as exc:
            raise Unsupported(field_name, f"regular expression not supported by Python re ({exc})") from None
        return lambda v: v is not None and rx.search(text_of(v)) is not None
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
        op, limit = COMPARE[value.op], value.number.number

        def test_compare(v: Any) -> bool:
            n = number_of(v) if type(v) is not bool else None
            return n is not None and op(n, limit)
        return test_compare
    raise Unsupported(field_name, f"value type {type(value).__name__} ({value!r:.80})")
