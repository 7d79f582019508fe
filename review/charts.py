"""Small server-rendered SVG charts for the review pages.

Inline SVG with presentation attributes only (no script, no style attribute, no external resource),
so it works under the app's Content-Security-Policy (``default-src 'none'``). Every text is escaped.
Charts draw counts and times only: never an identity or content, so nothing masked can leak into them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

INK, MUTED, LINE, OVER, UNDER, ACCENT = "#1d2733", "#5b6878", "#dde3ea", "#c05621", "#2f6fb3", "#2f6fb3"

COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("records", "max_records", "Records in the window"),
    ("distinct_records", "max_distinct_records", "Distinct record ids"),
    ("distinct_documents", "max_documents", "Distinct documents"),
    ("lookups_in_window", "max_per_window", "Look-ups in the window"),
    ("reveals", "max_reveals", "Reveals in the window"),
)
"""(observed fact, threshold fact, label): what an alert's window held against what config allows."""


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    limit: float | None
    limit_label: str


def bars_for(facts: Mapping[str, Any]) -> list[Bar]:
    """The observed-against-threshold pairs an alert's facts hold (numbers only)."""
    out = []
    for observed, limit, label in COMPARISONS:
        v, lim = facts.get(observed), facts.get(limit)
        if _num(v) and _num(lim) and (v or lim):
            out.append(Bar(label, float(v), float(lim), "threshold"))
    if facts.get("rule") == "volume" and _num(facts.get("count")) and _num(facts.get("mean")):
        out.append(Bar("Events in the hour", float(facts["count"]), float(facts["mean"]), "usual"))
    return out


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v == int(v) else f"{v:,.1f}"


def window_chart(facts: Mapping[str, Any], evidence: Sequence[Mapping[str, Any]], first_seen: float | None,
                 last_seen: float | None, width: int = 620) -> Markup | None:
    """Bars of what the window held against its threshold, and the evidence events on a time axis
    (dot size by records). None when the alert has neither."""
    bars = bars_for(facts)
    times = [(float(e["ts"]), e.get("record_count")) for e in evidence if _num(e.get("ts"))]
    if not bars and not times:
        return None
    label_w, row_h, pad = 190, 30, 12
    plot_w = width - label_w - 90
    parts: list[str] = []
    y = pad
    for bar in bars:
        top = max(bar.value, bar.limit or 0) * 1.1 or 1
        w = max(2.0, plot_w * bar.value / top)
        over = bar.limit is not None and bar.value > bar.limit
        parts.append(f'<text x="0" y="{y + 17}" font-size="12" fill="{MUTED}">{escape(bar.label)}</text>')
        parts.append(f'<rect class="bar" x="{label_w}" y="{y + 5}" width="{w:.1f}" height="16" rx="3" '
                     f'fill="{OVER if over else UNDER}"><title>{escape(bar.label)}: {_fmt(bar.value)}</title></rect>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 17}" font-size="12" fill="{INK}">'
                     f'{_fmt(bar.value)}</text>')
        if bar.limit is not None:
            x = label_w + plot_w * bar.limit / top
            parts.append(f'<line class="limit" x1="{x:.1f}" y1="{y + 1}" x2="{x:.1f}" y2="{y + 25}" stroke="{INK}" '
                         f'stroke-width="2" stroke-dasharray="4 2"><title>{escape(bar.limit_label)} '
                         f'{_fmt(bar.limit)}</title></line>')
            parts.append(f'<text x="{x + 3:.1f}" y="{y + 30}" font-size="10" fill="{MUTED}">'
                         f'{escape(bar.limit_label)} {_fmt(bar.limit)}</text>')
        y += row_h + 6
    if times:
        window = float(facts.get("window_s") or 0)
        start = min([t for t, _ in times] + [v for v in (first_seen,) if _num(v)])
        if window and _num(last_seen):
            start = min(start, float(last_seen) - window)
        end = max([t for t, _ in times] + [v for v in (last_seen,) if _num(v)])
        span = (end - start) or 1.0
        y += 14
        axis_y = y + 16
        parts.append(f'<text x="0" y="{axis_y + 4}" font-size="12" fill="{MUTED}">Evidence events</text>')
        parts.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" stroke="{LINE}" '
                     'stroke-width="2"/>')
        biggest = max((float(r) for _, r in times if _num(r)), default=1.0) or 1.0
        for t, records in sorted(times, key=lambda tr: tr[0]):
            x = label_w + plot_w * (t - start) / span
            r = 4 + 8 * ((float(records) / biggest) ** 0.5 if _num(records) else 0)
            what = f"{_clock(t)}" + (f", {_fmt(float(records))} records" if _num(records) else "")
            parts.append(f'<circle class="event" cx="{x:.1f}" cy="{axis_y}" r="{r:.1f}" fill="{ACCENT}" '
                         f'fill-opacity="0.55" stroke="{ACCENT}"><title>{escape(what)}</title></circle>')
        parts.append(f'<text x="{label_w}" y="{axis_y + 26}" font-size="10" fill="{MUTED}">{_clock(start)}</text>')
        parts.append(f'<text x="{label_w + plot_w}" y="{axis_y + 26}" font-size="10" fill="{MUTED}" '
                     f'text-anchor="end">{_clock(end)}</text>')
        y = axis_y + 30
    height = y + pad
    title = "What the alert's window held against its threshold" if bars else "When the evidence events happened"
    return Markup(
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(parts) + "</svg>"
    )


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
