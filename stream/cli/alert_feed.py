"""The alert lines ``custodes run`` prints while it runs.

One line per newly stored alert (stored time, severity, detector, the subject's pseudonym, title;
never a raw identity), at most ``burst`` lines per poll: past that, one summary line says how many
more arrived and how to list them, so a burst does not flood the terminal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

Row = dict[str, Any]


class AlertFeed:
    """Turns the alerts stored since the last poll into terminal lines.

    ``fetch(after, limit)`` returns alerts stored after ``after`` (a (created_at, id) pair, or None
    for "from now on"), oldest first; ``person`` turns a stored row into its pseudonym and
    ``title`` into the title to show (masked placeholders stay masked)."""

    def __init__(self, fetch: Callable[[tuple[datetime, str] | None, int], Sequence[Row]],
                 person: Callable[[Row], str], *, burst: int = 5, title: Callable[[Row], str] | None = None,
                 start_after: tuple[datetime, str] | None = None) -> None:
        self._fetch = fetch
        self._person = person
        self._title = title or (lambda r: str(r.get("title", "")))
        self.burst = burst
        self.after = start_after
        self.shown = 0
        self.summarised = 0

    def poll(self, page: int = 1000) -> list[str]:
        lines: list[str] = []
        more: Counter[str] = Counter()
        while True:
            rows = self._fetch(self.after, page)
            for r in rows:
                if len(lines) < self.burst:
                    lines.append(self.line(r))
                else:
                    more[str(r.get("severity", "?"))] += 1
                self.after = (r["created_at"], r["id"])
            if len(rows) < page:
                break
        self.shown += len(lines)
        if more:
            n = sum(more.values())
            self.summarised += n
            by = ", ".join(f"{k} {v:,}" for k, v in sorted(more.items(), key=lambda kv: (-kv[1], kv[0])))
            lines.append(f"          … and {n:,} more alert{'s' if n != 1 else ''} ({by}): custodes alerts")
        return lines

    def line(self, r: Row) -> str:
        stored = r.get("created_at")
        when = stored.strftime("%H:%M:%S") if isinstance(stored, datetime) else "--:--:--"
        return (f"{when}  ALERT {str(r.get('severity', '')):<8} {str(r.get('detector', '')):<22} "
                f"{self._person(r):<20} {self._title(r)}")
