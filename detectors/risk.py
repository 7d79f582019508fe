"""A user's risk score: their open alerts combined, each decaying with age.

Pure: ``risk_score(alerts, now)``. Each alert contributes ``score x severity weight x (1 + log2
count) x 0.5 ** (age / half_life)``, its age counted from its ``last_seen`` (event time); the sum is
squashed into 0..100 by ``100 x (1 - exp(-sum / scale))``, so one critical fresh alert gives about
60-70, several give more, and nothing reaches 100. Which alerts are open is the caller's business (the
alert store knows their review status). Knobs: ``[detectors.risk]`` in config/custodes.toml.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .alert import Alert


@dataclass(frozen=True)
class RiskConfig:
    half_life_days: float = 14.0
    scale: float = 100.0
    """The contribution sum that gives a risk of about 63."""
    severity_weights: dict[str, float] = field(
        default_factory=lambda: {"low": 0.25, "medium": 0.5, "high": 1.0, "critical": 1.5})

    @classmethod
    def from_mapping(cls, knobs: Mapping[str, Any]) -> RiskConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(knobs) - known
        if unknown:
            raise ValueError(f"detectors.risk: unknown setting(s) {sorted(unknown)}")
        values = dict(knobs)
        if "severity_weights" in values:
            values["severity_weights"] = {**cls().severity_weights, **values["severity_weights"]}
        for name in ("half_life_days", "scale"):
            if name in values and (isinstance(values[name], bool) or not isinstance(values[name], int | float)
                                   or values[name] <= 0):
                raise ValueError(f"detectors.risk: {name} must be a positive number")
        return cls(**values)


def weighted(score: float, severity: str, count: int, last_seen: float, now: float,
             config: RiskConfig = RiskConfig()) -> float:
    """One alert's contribution from its stored fields (used by the review app over the store's rows)."""
    age = max(0.0, now - last_seen)
    decay = 0.5 ** (age / (config.half_life_days * 86400))
    weight = config.severity_weights.get(severity, 1.0)
    return score * weight * (1 + math.log2(max(count, 1))) * decay


def squash(total: float, config: RiskConfig = RiskConfig()) -> float:
    """A sum of contributions -> 0..100."""
    return round(100 * (1 - math.exp(-total / config.scale)), 1)


def contribution(alert: Alert, now: float, config: RiskConfig = RiskConfig()) -> float:
    return weighted(alert.score, alert.severity, alert.count, alert.last_seen, now, config)


def risk_score(alerts: Iterable[Alert], now: float, config: RiskConfig = RiskConfig()) -> float:
    """0..100 for one user's open alerts at ``now`` (POSIX seconds)."""
    return squash(sum(contribution(a, now, config) for a in alerts), config)


def risk_by_subject(alerts: Iterable[Alert], now: float, config: RiskConfig = RiskConfig()) -> dict[str, float]:
    grouped: dict[str, list[Alert]] = {}
    for a in alerts:
        grouped.setdefault(a.subject, []).append(a)
    return {s: risk_score(a, now, config) for s, a in grouped.items()}
