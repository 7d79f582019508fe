"""impossible_travel: two events of one user from places further apart than anyone could travel in
the time between them (a shared or stolen account, or a session used from two places).

Locations are ``source.geo.location``. Each located event is compared with the user's located events
just before and just after it in event time (out-of-order events are slotted in where they belong);
if the great-circle (haversine) distance is at least ``min_distance_km`` and covering it would need
more than ``max_speed_kmh``, that is a hit. Hits within ``suppress_s`` fold into one alert.

State (bounded): the last ``max_points`` located events as ``[time, lat, lon]`` (no event ids; the
coordinates to ``PLACES`` decimals, about a metre, rounded as each is kept), kept
only while a pair with a newer event could still be impossible: ``max(grace_s, half the Earth's
circumference / max_speed_kmh)`` (about 22 hours at 900 km/h); plus the open alert window. Stored
flat as ``q``: ``[time, lat, lon, gap, lat, lon, ...]``, each point's time as the gap after the one
before (whole seconds as integers; :func:`pack_points`); a state stored as ``p`` (``[[time, lat, lon],
...]``, as before, and kept so when the gaps would not add back up to the same times) is read as it is.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .base import Clock, DetectorConfig, Needs
from .event import Event
from .masking import masked
from .reference import Reference
from .suppression import Folding, Hit, RuleDetector, when

EARTH_RADIUS_KM = 6371.0088
HALF_CIRCUMFERENCE_KM = math.pi * EARTH_RADIUS_KM
PLACES = 5
"""Decimals a kept location's latitude and longitude are rounded to (1e-5 degrees: about a metre)."""


def _whole(x: float) -> float | int:
    """A whole number of seconds as an integer (shorter in JSON); anything else (and -0.0) as it is."""
    if type(x) is float and x.is_integer() and abs(x) < 2**53 and (x or math.copysign(1.0, x) > 0):
        return int(x)
    return x


def pack_points(points: list[list[float]]) -> list[float | int] | None:
    """``[[time, lat, lon], ...]`` (in time order) flat, each time after the first as the gap after the
    one before: ``[t0, lat0, lon0, t1 - t0, lat1, lon1, ...]``. None when a gap added to the time before
    would not give exactly the point's time (times of very different magnitudes)."""
    out: list[float | int] = []
    prev: float | None = None
    for t, lat, lon in points:
        if not t and math.copysign(1.0, t) < 0:
            return None  # -0.0: no gap gives it back
        if prev is None:
            out += (_whole(t), lat, lon)
        else:
            gap = t - prev
            if prev + gap != t:
                return None
            out += (_whole(gap), lat, lon)
        prev = t
    return out


def unpack_points(flat: list[float | int]) -> list[list[float]]:
    """:func:`pack_points`' points, with the same times."""
    points: list[list[float]] = []
    t = 0.0
    for i in range(0, len(flat), 3):
        t = float(flat[i]) if i == 0 else t + flat[i]
        points.append([t, flat[i + 1], flat[i + 2]])
    return points


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class ImpossibleTravelConfig(DetectorConfig):
    max_speed_kmh: float = 900.0
    """Faster than a scheduled flight is impossible."""
    min_distance_km: float = 100.0
    """Closer pairs are ignored (geolocation of IP addresses is coarse)."""
    min_interval_s: int = 60
    """Pairs closer in time than this are treated as this far apart (clock skew between sources)."""
    max_points: int = 8
    """Located events kept per person to compare a new one with."""
    grace_s: int = 3600
    suppress_s: int = 3600


class ImpossibleTravel(RuleDetector):
    id = "impossible_travel"
    version = 1
    summary = "Two events of one user further apart than max_speed_kmh allows for the time between them."
    Config = ImpossibleTravelConfig
    config: ImpossibleTravelConfig

    def needs(self) -> Needs:
        return Needs(fields=("lat",))  # with lon too, in practice; hits() checks both

    def memory_s(self) -> float:
        cfg = self.config
        speed = max(cfg.max_speed_kmh, 1.0)
        return max(float(cfg.grace_s), HALF_CIRCUMFERENCE_KM / speed * 3600)

    @cached_property
    def _memory_s(self) -> float:
        return self.memory_s()

    def hits(self, subject: str, ev: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        cfg = self.config
        if ev.lat is None or ev.lon is None:
            return ()
        horizon = newest - self._memory_s
        if ev.ts <= horizon:
            return ()
        points: list[list[float]] | None = state.get("p")
        if points is None:
            flat = state.pop("q", None)  # unpacked here for the batch; packed again by tidy
            points = unpack_points(flat) if flat else []
        if points and points[0][0] <= horizon:
            points = [p for p in points if p[0] > horizon]
        i = bisect.bisect_right(points, [ev.ts, math.inf, math.inf])
        neighbours = points[max(0, i - 1):i + 1]
        worst: tuple[float, float, float, list[float]] | None = None
        for p in neighbours:
            km = haversine_km(p[1], p[2], ev.lat, ev.lon)
            dt = max(abs(ev.ts - p[0]), cfg.min_interval_s, 1e-9)
            kmh = km / (dt / 3600)
            if km >= cfg.min_distance_km and kmh > cfg.max_speed_kmh and (worst is None or kmh > worst[0]):
                worst = (kmh, km, abs(ev.ts - p[0]), p)
        points.insert(i, [ev.ts, round(ev.lat, PLACES), round(ev.lon, PLACES)])
        if len(points) > cfg.max_points:
            points = points[-cfg.max_points:]
        state["p"] = points
        if worst is None:
            return ()
        kmh, km, dt, p = worst
        ratio = kmh / max(cfg.max_speed_kmh, 1.0)
        first, second = sorted([p[0], ev.ts])
        return (Hit(
            key="travel", event=ev,
            score=55 + 12 * math.log2(min(ratio, 64.0)),
            title=f"Impossible travel: {km:,.0f} km in {dt / 60:,.0f} min" if dt >= 60 else
            f"Impossible travel: {km:,.0f} km in {dt:.0f} s",
            explanation=(
                f"This user's events at {when(first)} and {when(second)} came from places {km:,.0f} km "
                f"apart; covering that in the time between would need {kmh:,.0f} km/h, above the "
                f"{cfg.max_speed_kmh:,.0f} km/h limit (pairs under {cfg.min_distance_km:,.0f} km are "
                f"ignored; detectors.impossible_travel)."
            ),
            facts={"distance_km": round(km, 1), "interval_s": round(dt, 1), "speed_kmh": round(kmh),
                   "max_speed_kmh": cfg.max_speed_kmh,
                   **masked(**{"from": [round(p[1], 2), round(p[2], 2)],
                               "to": [round(ev.lat, 2), round(ev.lon, 2)]})},
        ),)

    def tidy(self, subject: str, state: dict[str, Any], ref: Reference, newest: float | None,
             clock: Clock, fold: Folding | None) -> bool:
        points = state.pop("p", None)
        if points is None:
            flat = state.get("q")
            if not flat:
                state.pop("q", None)
                return False
            if newest is None or flat[0] > newest - self._memory_s:
                return True  # nothing expired (the first time is the oldest): left packed
            points = unpack_points(state.pop("q"))
        if points and newest is not None:
            horizon = newest - self._memory_s
            if points[0][0] <= horizon:  # sorted by time
                points = [p for p in points if p[0] > horizon]
        if not points:
            state.pop("q", None)
            return False
        flat = pack_points(points)
        if flat is None:
            state["p"] = points
            state.pop("q", None)
        else:
            state["q"] = flat
        return True
