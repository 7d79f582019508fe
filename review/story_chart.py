"""The person story chart: server-rendered SVG (no script, no style attribute, no external resource:
it works under the app's ``default-src 'none'`` CSP, and reads without JavaScript).

Stacked bars of the person's events per day by kind, their own baseline and their peer group's as
lines, the departure window shaded, alerts (circles, by severity, each a link to its alert) and risk
signals (diamonds) marked above the days they happened. ``<title>``/``<desc>`` say the same in words
for screen readers; every mark has its own ``<title>`` tooltip. Only the pseudonym, dates, counts,
kinds, detector ids and severities are drawn: never an identity or content. Every text is escaped.
"""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

from .charts import INK, LINE, MUTED
from .story import BASELINE_DAYS, Marker, Story

KIND_COLOURS = {
    "logon": "#9fb3c8", "logoff": "#c5d2df", "record_access": "#2f6fb3", "export": "#c05621",
    "share": "#8e44ad", "removable_media": "#b7312c", "web_upload": "#d69e2e", "message": "#2c7a7b",
    "mail_forward": "#805ad5", "print": "#718096", "membership": "#4a5568", "review": "#a0aec0",
}
OTHER_COLOUR = "#cbd5e0"
SEVERITY_COLOURS = {"low": "#718096", "medium": "#d69e2e", "high": "#c05621", "critical": "#9b2c2c"}
OWN_COLOUR, PEER_COLOUR, SIGNAL_COLOUR, DEPARTING_COLOUR = "#1d2733", "#2c7a7b", "#6b46c1", "#fbd38d"
ROW_H = 14
"""Height of a row of alert or signal marks above the bars (one row per mark of the busiest day)."""
MAX_KINDS = 8
"""Kinds drawn apart (the most frequent); the rest are drawn together as "other kinds"."""


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v == int(v) else f"{v:,.1f}"


def story_chart(s: Story, width: int = 920) -> Markup:
    days = s.days
    n = len(days)
    left, right, top_pad = 46, 12, 10
    alert_rows = _rows(s.alerts, days)
    marks_h = (alert_rows + _rows(s.signals, days)) * ROW_H + 4 if (s.alerts or s.signals) else 0
    plot_h = 200
    plot_w = width - left - right
    step = plot_w / n
    bar_w = max(1.0, step * 0.78)
    top = top_pad + marks_h
    bottom = top + plot_h
    kinds = s.kinds
    drawn = kinds[:MAX_KINDS]
    other_kinds = set(kinds[MAX_KINDS:])
    peak = max([s.total(d) for d in days] + [v for v in s.own.values()] + [v for v in s.peer.values()] + [1])
    scale = _nice(peak)
    index = {d: i for i, d in enumerate(days)}

    def x(day: date) -> float:
        return left + step * index[day]

    def y(v: float) -> float:
        return bottom - plot_h * v / scale

    parts: list[str] = []
    # the departure window, behind everything
    if s.departing is not None:
        a, b = max(s.departing[0], days[0]), min(s.departing[1], days[-1])
        if a <= b:
            x0, x1 = x(a), x(b) + step
            label = f"Departure window {s.departing[0].isoformat()} to {s.departing[1].isoformat()}"
            parts.append(f'<rect class="departing" x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{plot_h}" '
                         f'fill="{DEPARTING_COLOUR}" fill-opacity="0.35"><title>{escape(label)}</title></rect>')
            parts.append(f'<text x="{x0 + 4:.1f}" y="{top + 12}" font-size="11" fill="{INK}">departure window</text>')
    for when, what in ((s.notice, "notice"), (s.leave, "leave")):
        if when is not None and when in index:
            xm = x(when) + step / 2
            parts.append(f'<line class="hr-date" x1="{xm:.1f}" y1="{top}" x2="{xm:.1f}" y2="{bottom}" '
                         f'stroke="{INK}" stroke-width="1" stroke-dasharray="2 3">'
                         f'<title>{what} date {when.isoformat()}</title></line>')
            parts.append(f'<text x="{xm + 3:.1f}" y="{bottom - 4}" font-size="10" fill="{INK}">{what}</text>')
    # axes and gridlines
    for i in range(5):
        v = scale * i / 4
        yy = y(v)
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="{LINE}" '
                     'stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" font-size="10" fill="{MUTED}" '
                     f'text-anchor="end">{_fmt(v)}</text>')
    # bars: one stack per day, one rect per kind
    for day in days:
        counts = s.counts.get(day)
        if not counts:
            continue
        level = 0
        stack = [(k, counts[k]) for k in drawn if counts.get(k)]
        rest = sum(v for k, v in counts.items() if k in other_kinds)
        if rest:
            stack.append(("other kinds", rest))
        for kind, v in stack:
            y1, y0 = y(level + v), y(level)
            colour = KIND_COLOURS.get(kind, OTHER_COLOUR)
            tip = f"{day.isoformat()}: {v:,} {kind.replace('_', ' ')}"
            parts.append(f'<rect class="bar" data-kind="{escape(kind)}" data-day="{day.isoformat()}" '
                         f'x="{x(day) + (step - bar_w) / 2:.1f}" y="{y1:.1f}" width="{bar_w:.1f}" '
                         f'height="{max(0.5, y0 - y1):.1f}" fill="{colour}"><title>{escape(tip)}</title></rect>')
            level += v
    # baselines
    for cls, values, colour, dash, words in (
        ("own", s.own, OWN_COLOUR, "6 3", f"own baseline ({BASELINE_DAYS}-day mean)"),
        ("peer", s.peer, PEER_COLOUR, "2 2", "peer group baseline (team mean that day)"),
    ):
        points = [(x(d) + step / 2, y(values[d])) for d in days if d in values]
        if not points:
            continue
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline class="baseline {cls}" points="{path}" fill="none" stroke="{colour}" '
                     f'stroke-width="2" stroke-dasharray="{dash}"><title>{escape(words)}</title></polyline>')
    # alerts and signals above the plot: one row per mark on the busiest day, alerts above signals
    for first_row, markers in ((0, s.alerts), (alert_rows, s.signals)):
        stacked: dict[date, int] = {}
        for m in markers:
            if m.day not in index:
                continue
            k = stacked[m.day] = stacked.get(m.day, -1) + 1
            cx = x(m.day) + step / 2
            cy = top_pad + 7 + (first_row + k) * ROW_H
            tip = escape(f"{m.day.isoformat()}: {m.label}")
            if markers is s.alerts:
                fill = SEVERITY_COLOURS.get(m.severity or "", INK)
                shape = (f'<circle class="alert" data-day="{m.day.isoformat()}" cx="{cx:.1f}" cy="{cy}" r="6" '
                         f'fill="{fill}" stroke="#fff"><title>{tip}</title></circle>')
            else:
                shape = (f'<polygon class="signal" data-day="{m.day.isoformat()}" points="{cx:.1f},{cy - 6} '
                         f'{cx + 6:.1f},{cy} {cx:.1f},{cy + 6} {cx - 6:.1f},{cy}" fill="{SIGNAL_COLOUR}" '
                         f'stroke="#fff"><title>{tip}</title></polygon>')
            if m.href:
                shape = f'<a href="{escape(m.href)}">{shape}</a>'
            parts.append(shape)
        for day in stacked:
            cx = x(day) + step / 2
            parts.append(f'<line x1="{cx:.1f}" y1="{top_pad + 13 + (first_row + stacked[day]) * ROW_H}" '
                         f'x2="{cx:.1f}" y2="{top}" stroke="{LINE}" stroke-width="1"/>')
    # the time axis: a label about every week
    every = max(1, round(n / 9))
    for i, day in enumerate(days):
        if i % every == 0:
            parts.append(f'<text x="{x(day) + step / 2:.1f}" y="{bottom + 14}" font-size="10" fill="{MUTED}" '
                         f'text-anchor="middle">{day.strftime("%d %b")}</text>')
    parts.append(f'<line x1="{left}" y1="{bottom}" x2="{left + plot_w}" y2="{bottom}" stroke="{MUTED}"/>')
    # legend
    ly = bottom + 32
    lx = float(left)
    legend: list[tuple[str, str]] = [
        (f'<rect width="10" height="10" y="-9" fill="{KIND_COLOURS.get(k, OTHER_COLOUR)}"/>', k.replace("_", " "))
        for k in drawn]
    if other_kinds:
        legend.append((f'<rect width="10" height="10" y="-9" fill="{OTHER_COLOUR}"/>', "other kinds"))
    if s.own:
        legend.append((f'<line x1="0" x2="14" y1="-4" y2="-4" stroke="{OWN_COLOUR}" stroke-width="2" '
                       'stroke-dasharray="6 3"/>', "own baseline"))
    if s.peer:
        legend.append((f'<line x1="0" x2="14" y1="-4" y2="-4" stroke="{PEER_COLOUR}" stroke-width="2" '
                       'stroke-dasharray="2 2"/>', "peer group"))
    if s.alerts:
        legend.append((f'<circle cx="5" cy="-4" r="5" fill="{SEVERITY_COLOURS["high"]}"/>', "alert"))
    if s.signals:
        legend.append((f'<polygon points="5,-10 11,-4 5,2 -1,-4" fill="{SIGNAL_COLOUR}"/>', "risk signal"))
    if s.departing is not None:
        legend.append((f'<rect width="12" height="10" y="-9" fill="{DEPARTING_COLOUR}" fill-opacity="0.6"/>',
                       "departure window"))
    for swatch, words in legend:
        w = 22 + 6.2 * len(words)
        if lx + w > width - right:
            lx, ly = float(left), ly + 16
        parts.append(f'<g class="legend" transform="translate({lx:.1f},{ly})">{swatch}'
                     f'<text x="{16}" y="0" font-size="11" fill="{INK}">{escape(words)}</text></g>')
        lx += w + 10
    height = ly + 10
    title = f"Activity per day of {s.pseudonym}, {days[0].isoformat()} to {days[-1].isoformat()}"
    return Markup(
        f'<svg class="chart story" role="img" aria-labelledby="story-title story-desc" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="story-title">{escape(title)}</title><desc id="story-desc">{escape(describe(s))}</desc>'
        + "".join(parts) + "</svg>"
    )


def _rows(markers: list[Marker], days: list[date]) -> int:
    shown = set(days)
    per: dict[date, int] = {}
    for m in markers:
        if m.day in shown:
            per[m.day] = per.get(m.day, 0) + 1
    return max(per.values(), default=0)


def describe(s: Story) -> str:
    """The chart in words (its ``<desc>``, and the text beside it)."""
    days = s.days
    totals = {d: s.total(d) for d in days}
    active = [d for d in days if totals[d]]
    out = [f"{len(days)} days, {sum(totals.values()):,} events on {len(active)} of them."]
    if active:
        busiest = max(active, key=lambda d: (totals[d], d))
        out.append(f"Busiest day {busiest.isoformat()} with {totals[busiest]:,} events.")
        kinds = s.kinds
        out.append("Kinds: " + ", ".join(k.replace("_", " ") for k in kinds) + ".")
    last = days[-1]
    if s.own:
        latest = max(s.own)
        out.append(f"Own baseline ({BASELINE_DAYS}-day mean) {_fmt(s.own[latest])} a day on {latest.isoformat()}.")
    else:
        out.append("No own baseline yet (no earlier activity recorded).")
    if s.peer:
        mean = sum(s.peer.values()) / len(s.peer)
        out.append(f"Peer group ({s.peers} other{'s' if s.peers != 1 else ''} in the same team): "
                   f"{_fmt(mean)} events a day on average.")
    elif s.in_directory:
        out.append("No peer group baseline (no team, or no one else in the team).")
    else:
        out.append("Not in the staff directory: no peer group or departure dates.")
    out.append(f"{len(s.alerts)} alert{'s' if len(s.alerts) != 1 else ''} and {len(s.signals)} risk "
               f"signal{'s' if len(s.signals) != 1 else ''} in the range.")
    if s.departing is not None:
        out.append(f"Departure window {s.departing[0].isoformat()} to {s.departing[1].isoformat()}"
                   + (" (shaded)." if s.departing[0] <= last and s.departing[1] >= days[0] else
                      " (outside the range shown)."))
    return " ".join(out)


def _nice(v: float) -> float:
    """A round axis maximum at or above ``v`` (1, 2, 2.5 or 5 times a power of ten)."""
    import math

    if v <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * power:
            return float(m * power)
    return float(10 * power)
