"""Sigma correlation rules evaluated per event, on bounded state (counts and sketches, never events).

State of one correlation for one group of one person (JSON):

``event_count``                  ``{"b": [[bucket, n], …]}``: events per bucket of event time
``value_count``                  ``{"v": {hash(value): bucket last seen}}``: at most ``count + 1``
                                 distinct values (enough to decide the condition), oldest dropped
``value_sum`` / ``value_avg``    ``{"b": [[bucket, sum, n], …]}``
``value_percentile`` / ``_median`` ``{"b": [[bucket, {bin: n}], …]}``: a log-binned histogram per
                                 bucket (relative error <= ``SKETCH_ERROR``, at most ``SKETCH_BINS``
                                 bins a bucket: the lowest merged)
``value_percentile`` without     ``{"b": [[bucket, events, {hash(value): n}, full], …]}``: the share of
``percentile``                   events with a value (:func:`value_share`, the specification's example)
``temporal``                     ``{"r": {rule: last time seen}}``
``temporal_ordered``             ``{"k": [[start, end] | null, …]}``: per prefix of the rule list,
                                 the latest start of a chain of matches in order, and its end

A window "at" an event covers the buckets from ``bucket(ts) - timespan + bucket_s`` to
``bucket(ts)``: its edge is exact to ``bucket_s`` (``timespan / 60``, at least 1 s). Each event is
counted and the condition checked at that event, in arrival order, so how the stream is cut into
batches does not change the result. An event more than ``grace_s`` older than the newest event of
the person is not counted (its window may already be pruned); everything a later accepted event
could still see is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from .document import Doc, text_of

if TYPE_CHECKING:
    from .ruleset import CorrelationRule

SKETCH_ERROR = 0.01
SKETCH_BINS = 256
_GAMMA = (1 + SKETCH_ERROR) / (1 - SKETCH_ERROR)
_LOG_GAMMA = math.log(_GAMMA)

OPS: dict[str, Callable[[float, float], bool]] = {
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
}


def digest(text: str) -> str:
    return blake2b(text.encode(), digest_size=6).hexdigest()


def bucket_of(ts: float, bucket_s: int) -> int:
    return int(math.floor(ts / bucket_s) * bucket_s)


def window_start(ts: float, timespan_s: int, bucket_s: int) -> int:
    return bucket_of(ts, bucket_s) - timespan_s + bucket_s


# -- counts ------------------------------------------------------------------------------------------


def _add(buckets: list[list[Any]], b: int, values: list[Any]) -> list[Any]:
    """The entry of bucket ``b`` (created in order); ``values`` are its initial fields after b."""
    if not buckets or buckets[-1][0] < b:
        entry = [b, *values]
        buckets.append(entry)
        return entry
    for i in range(len(buckets) - 1, -1, -1):
        e = buckets[i]
        if e[0] == b:
            return e
        if e[0] < b:
            entry = [b, *values]
            buckets.insert(i + 1, entry)
            return entry
    entry = [b, *values]
    buckets.insert(0, entry)
    return entry


def event_count(g: dict[str, Any], ts: float, timespan_s: int, bucket_s: int) -> float:
    buckets = g.setdefault("b", [])
    b = bucket_of(ts, bucket_s)
    _add(buckets, b, [0])[1] += 1
    start = b - timespan_s + bucket_s
    return sum(n for at, n in buckets if start <= at <= b)


def value_count(g: dict[str, Any], ts: float, value: str, timespan_s: int, bucket_s: int, cap: int) -> float:
    seen: dict[str, int] = g.setdefault("v", {})
    b = bucket_of(ts, bucket_s)
    h = digest(value)
    old = seen.get(h)
    if old is None:
        if len(seen) >= cap:  # full: the value seen longest ago makes way
            oldest = min(seen, key=seen.__getitem__)
            if seen[oldest] < b:
                del seen[oldest]
                seen[h] = b
        else:
            seen[h] = b
    elif b > old:
        seen[h] = b
    start = b - timespan_s + bucket_s
    return sum(1 for at in seen.values() if start <= at <= b)


def value_sum(g: dict[str, Any], ts: float, number: float, timespan_s: int, bucket_s: int, avg: bool) -> float:
    buckets = g.setdefault("b", [])
    b = bucket_of(ts, bucket_s)
    entry = _add(buckets, b, [0, 0])
    entry[1] += number
    entry[2] += 1
    start = b - timespan_s + bucket_s
    total = n = 0.0
    for at, s, k in buckets:
        if start <= at <= b:
            total += s
            n += k
    if avg:
        return total / n if n else 0.0
    return total


def _bin(x: float) -> str:
    if x == 0:
        return "0"
    k = math.ceil(math.log(abs(x)) / _LOG_GAMMA)
    return f"{'-' if x < 0 else ''}{k}"


def _bin_value(key: str) -> float:
    if key == "0":
        return 0.0
    neg = key.startswith("-")
    k = int(key[1:] if neg else key)
    v = 2 * _GAMMA ** k / (_GAMMA + 1)
    return -v if neg else v


def value_percentile(g: dict[str, Any], ts: float, number: float, timespan_s: int, bucket_s: int,
                     percentile: float) -> float:
    buckets = g.setdefault("b", [])
    b = bucket_of(ts, bucket_s)
    entry = _add(buckets, b, [{}])
    bins: dict[str, int] = entry[1]
    key = _bin(number)
    bins[key] = bins.get(key, 0) + 1
    if len(bins) > SKETCH_BINS:  # merge the two lowest bins
        keys = sorted(bins, key=_bin_value)
        low, nxt = keys[0], keys[1]
        bins[nxt] += bins.pop(low)
    start = b - timespan_s + bucket_s
    merged: dict[str, int] = {}
    for at, hist in buckets:
        if start <= at <= b:
            for k, n in hist.items():
                merged[k] = merged.get(k, 0) + n
    total = sum(merged.values())
    rank = max(1, math.ceil(percentile / 100 * total))
    seen = 0
    for k in sorted(merged, key=_bin_value):
        seen += merged[k]
        if seen >= rank:
            return _bin_value(k)
    return 0.0


SHARE_VALUES = 256
"""``value_percentile`` without ``percentile`` (the specification's rarity example): distinct values
counted per bucket at most; a value first seen in a full bucket is counted in the total only."""


def value_share(g: dict[str, Any], ts: float, value: str, timespan_s: int, bucket_s: int) -> float | None:
    """The specification's ``value_percentile`` example ("a process name seen in at most 1 % of the
    computer's processes"): the percentage of the group's events in the window that have this event's
    value, this one included. State ``{"b": [[bucket, events, {hash(value): n}, full], …]}``. None when
    a bucket of the window was full without this value (its count there is unknown: not judged)."""
    buckets = g.setdefault("b", [])
    b = bucket_of(ts, bucket_s)
    entry = _add(buckets, b, [0, {}, False])
    entry[1] += 1
    h = digest(value)
    seen: dict[str, int] = entry[2]
    if h in seen or len(seen) < SHARE_VALUES:
        seen[h] = seen.get(h, 0) + 1
    else:
        entry[3] = True
    start = b - timespan_s + bucket_s
    total = count = 0
    for at, n, values, full in buckets:
        if start <= at <= b:
            total += n
            k = values.get(h)
            if k is None and full:
                return None
            count += k or 0
    return 100.0 * count / total if total else None


# -- temporal ----------------------------------------------------------------------------------------


def temporal(g: dict[str, Any], ts: float, rule: int, timespan_s: int) -> tuple[float, list[int]]:
    """Record a match of referenced rule ``rule``; returns how many of the referenced rules matched
    within ``timespan_s`` of this event (a window that holds it) and which."""
    last: dict[str, float] = g.setdefault("r", {})
    key = str(rule)
    if last.get(key, -math.inf) < ts:
        last[key] = ts
    inside = [int(k) for k, t in last.items() if abs(ts - t) <= timespan_s]
    if inside:
        times = [last[str(k)] for k in inside]
        # every one of them within one window of timespan_s: drop the farthest until they fit
        while times and max(times) - min(times) > timespan_s:
            far = max(range(len(times)), key=lambda i: abs(times[i] - ts))
            del times[far]
            del inside[far]
    return float(len(inside)), sorted(inside)


def temporal_ordered(g: dict[str, Any], ts: float, rule: int, n_rules: int, timespan_s: int) -> bool:
    """Record a match of the ``rule``-th referenced rule; True when it completes the chain (every
    rule matched in the listed order, the first no more than ``timespan_s`` before this one)."""
    chains: list[Any] = g.get("k") or [None] * n_rules
    if len(chains) != n_rules:
        chains = [None] * n_rules
    g["k"] = chains
    if rule == 0:
        cur = chains[0]
        if cur is None or cur[0] <= ts:
            chains[0] = [ts, ts]
        return n_rules == 1
    prev = chains[rule - 1]
    if prev is None or prev[1] > ts or ts - prev[0] > timespan_s:
        return False
    cur = chains[rule]
    if cur is None or cur[0] <= prev[0]:
        chains[rule] = [prev[0], ts]
    return rule == n_rules - 1


# -- expiry ------------------------------------------------------------------------------------------


def expire(kind: str, g: dict[str, Any], horizon: float, bucket_s: int) -> bool:
    """Drop what no accepted event can see any more (``horizon``: newest - grace - timespan); True
    when nothing is left."""
    if "b" in g:
        buckets = g["b"]
        keep = [e for e in buckets if e[0] + bucket_s > horizon]
        if len(keep) != len(buckets):
            g["b"] = keep
        return not keep
    if "v" in g:
        seen = g["v"]
        g["v"] = {h: b for h, b in seen.items() if b + bucket_s > horizon}
        return not g["v"]
    if "r" in g:
        g["r"] = {k: t for k, t in g["r"].items() if t > horizon}
        return not g["r"]
    if "k" in g:
        g["k"] = [c if c is not None and c[0] > horizon else None for c in g["k"]]
        return all(c is None for c in g["k"])
    return True


# -- one event of a correlation -----------------------------------------------------------------------


def correlation_inputs(corr: CorrelationRule, pos: int, doc: Doc) -> tuple[str, str | None, float | None] | None:
    """What an event matching the ``pos``-th referenced rule gives a correlation: its group (the
    group-by values joined), the value counted by ``value_count``, the number of the metric types;
    None when it does not count (a group-by or value field absent: backends drop nulls too)."""
    values = []
    for f in corr.group_by[pos]:
        got = [v for v in doc.get(f) if v is not None]
        if not got:
            return None
        values.append(text_of(got[0]))
    kind = corr.type
    value: str | None = None
    number: float | None = None
    if kind == "value_count" or (kind == "value_percentile" and corr.percentile is None):  # a value, as text
        vf = corr.value_field[pos]
        got = [v for v in doc.get(vf) if v is not None] if vf else []
        if not got:
            return None
        value = text_of(got[0])
    elif kind in METRIC_TYPES:
        vf = corr.value_field[pos]
        for v in doc.get(vf) if vf else ():
            if type(v) in (int, float) or (type(v) is str and _numeric(v)):
                number = float(v)
                break
        if number is None:
            return None
    return "\x1f".join(values), value, number


METRIC_TYPES = ("value_sum", "value_avg", "value_percentile", "value_median")


def observe(corr: CorrelationRule, g: dict[str, Any], pos: int, ts: float, value: str | None,
            number: float | None) -> tuple[float, str, bool] | None:
    """Count one event of a group (``g``: that group's state, updated in place) and check the
    condition at it: (observed, what was counted, whether a sequence) when it holds, else None. The
    same code for a person's groups and for the group stage's."""
    kind, span, bucket = corr.type, corr.timespan_s, corr.bucket_s
    if kind == "event_count":
        observed = event_count(g, ts, span, bucket)
        what = "matching events"
    elif kind == "value_count":
        cap = int(max(corr.count, 1)) + 1
        observed = value_count(g, ts, value or "", span, bucket, cap)
        what = f"distinct values of {corr.value_field[pos]}"
    elif kind == "value_percentile" and corr.percentile is None:
        share = value_share(g, ts, value or "", span, bucket)
        if share is None:
            return None  # this value went untracked in a full bucket of the window: not judged
        observed = share
        what = f"% of the group's events with this {corr.value_field[pos]}"
    elif kind in METRIC_TYPES:
        assert number is not None
        vf = corr.value_field[pos]
        if kind in ("value_sum", "value_avg"):
            observed = value_sum(g, ts, number, span, bucket, kind == "value_avg")
            what = f"{'sum' if kind == 'value_sum' else 'average'} of {vf}"
        else:
            observed = value_percentile(g, ts, number, span, bucket, corr.percentile or 50.0)
            what = f"{corr.percentile:g}th percentile of {vf}"
    elif kind == "temporal":
        observed, inside = temporal(g, ts, pos, span)
        if corr.expression is not None:
            seen = {corr.names[k] for k in inside}
            if not _holds(corr.expression, seen):
                return None
            return observed, "referenced rules", True
        what = "of the referenced rules"
    else:  # temporal_ordered
        if not temporal_ordered(g, ts, pos, len(corr.rules), span):
            return None
        return float(len(corr.rules)), "referenced rules in order", True
    if not OPS[corr.op](observed, corr.count):
        return None
    return observed, what, False


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _holds(node: Any, seen: set[str]) -> bool:
    """An extended temporal condition (pySigma's parse tree) over the rules seen in the window."""
    from sigma.correlations import (
        CorrelationConditionAND,
        CorrelationConditionNOT,
        CorrelationConditionOR,
        SigmaRuleReference,
    )

    if isinstance(node, SigmaRuleReference):
        return node.reference in seen
    if isinstance(node, CorrelationConditionAND):
        return all(_holds(a, seen) for a in node.args)
    if isinstance(node, CorrelationConditionOR):
        return any(_holds(a, seen) for a in node.args)
    if isinstance(node, CorrelationConditionNOT):
        return not _holds(node.args[0], seen)
    raise ValueError(f"unknown correlation condition element {type(node).__name__}")
