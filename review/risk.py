"""The per-subject risk score. One function, so a detector-suite score can replace it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime


def risk_score(open_alerts: Iterable[tuple[float, datetime]], now: datetime, half_life_s: float) -> float:
    """Sum of open alerts' scores, each halved for every ``half_life_s`` of age (alert time to now).

    ``open_alerts`` are (score, alert time) pairs. Alerts dated in the future count at full score.
    """
    total = 0.0
    for score, ts in open_alerts:
        age = max(0.0, (now - ts).total_seconds())
        total += score * 0.5 ** (age / half_life_s)
    return round(total, 1)
