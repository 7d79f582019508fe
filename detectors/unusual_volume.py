"""unusual_volume: a user far busier than usual for that hour, or working at hours they never work,
compared with their own baseline and, when available, their peer group's.

Per user, activity is counted per hour of event time; when an hour closes (``grace_s`` after its
end) its count, zeros included, is folded into an exponentially weighted mean and variance for its
bucket: local hour of day x weekday/weekend (48 buckets, :mod:`detectors.peers`); a bucket's first
``1 / alpha`` observations are plainly averaged, so a new baseline is not biased towards zero. Each event is
checked as its hour's count grows:

``volume``  count >= ``min_events`` and z = (count - mean) / sqrt(var + ``min_variance``) >=
            ``z_threshold``; if a baseline for the user's peer group (``team/role``, reference kind
            ``peer``) is available, the count must also be at least ``peer_z_threshold`` standard
            deviations above the peer mean for that bucket (unusual for the user AND for the job)
``hours``   count >= ``off_hours_min_events`` in a bucket whose mean is below ``off_hours_max_mean``
            (hours this user does not work)

No alert during the first ``warmup_days`` after the user was first seen. Hits fold per rule per
``suppress_s``.

State (bounded, about 2 KB): 48 means, 48 variances, 48 observation counts, the first-seen time, the last closed hour,
counts of the hours still open (at most ``grace_s / 3600 + 2``), the open alert windows. It does not
expire while the user is active (the baseline is the point); after ``forget_days`` without events,
or once it is older than ``max_age_days`` (the retention window), it is reset and warm-up starts again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .base import Clock, DetectorConfig
from .event import Event
from .peers import BUCKETS, HOUR, bucket_of, closing_hours, ewma, hour_of
from .reference import Reference
from .suppression import Folding, Hit, RuleDetector, when


@dataclass(frozen=True)
class UnusualVolumeConfig(DetectorConfig):
    warmup_days: int = 14
    alpha: float = 0.05
    """Weight of each new hourly observation in the running mean/variance of its bucket."""
    z_threshold: float = 4.0
    min_events: int = 50
    """No volume alert for an hour with fewer events than this."""
    min_variance: float = 4.0
    """Added to the variance, so a near-constant baseline does not make small changes look extreme."""
    peer_z_threshold: float = 3.0
    off_hours_min_events: int = 10
    off_hours_max_mean: float = 0.05
    timezone: str = "Europe/London"
    forget_days: int = 90
    max_age_days: int = 730
    """A baseline started longer ago than this is reset (explicit expiry: no state derived from events
    older than the retention window survives); warm-up then starts again."""
    grace_s: int = 3600
    suppress_s: int = 86400


class UnusualVolume(RuleDetector):
    id = "unusual_volume"
    version = 1
    summary = "Far more activity than the user's (and their peers') baseline for that hour, or work at unusual hours."
    Config = UnusualVolumeConfig
    config: UnusualVolumeConfig

    def _close(self, st: dict[str, Any], upto: float) -> None:
        cfg = self.config
        counts = {h: n for h, n in st["h"]}
        for h in closing_hours(st["c"], upto):
            b = bucket_of(h, cfg.timezone)
            k = st["k"][b] = min(st["k"][b] + 1, 10_000)
            alpha = max(cfg.alpha, 1 / k)  # a plain average until 1/alpha observations, then EWMA
            st["m"][b], st["v"][b] = ewma(st["m"][b], st["v"][b], counts.get(h, 0), alpha)
        st["c"] = upto
        st["h"] = [x for x in st["h"] if x[0] > upto]

    def hits(self, subject: str, ev: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        cfg = self.config
        st = state.get("b")
        if (st is None or ev.ts - st["l"] > cfg.forget_days * 86400
                or ev.ts - st["f"] > cfg.max_age_days * 86400):
            st = state["b"] = {"m": [0.0] * BUCKETS, "v": [0.0] * BUCKETS, "k": [0] * BUCKETS, "f": ev.ts, "l": ev.ts,
                               "c": hour_of(ev.ts) - HOUR, "h": []}
        st["l"] = max(st["l"], ev.ts)
        upto = hour_of(newest - cfg.grace_s) - HOUR
        if upto > st["c"]:
            self._close(st, upto)
        h = hour_of(ev.ts)
        if h <= st["c"]:
            return  # too late: that hour has been folded into the baseline
        for x in st["h"]:
            if x[0] == h:
                x[1] += 1
                count = x[1]
                break
        else:
            st["h"].append([h, 1])
            st["h"].sort()
            count = 1
        if ev.ts - st["f"] < cfg.warmup_days * 86400:
            return
        b = bucket_of(ev.ts, cfg.timezone)
        mean, var = st["m"][b], st["v"][b]
        sd = math.sqrt(var + cfg.min_variance)
        z = (count - mean) / sd
        span = f"the hour from {when(h)}"
        if count >= cfg.min_events and z >= cfg.z_threshold:
            person = ref.person(subject)
            group = person.peer_group if person else None
            peer = ref.peers.get(group) if group else None
            peer_text, peer_facts = "", {}
            if peer is not None and b < len(peer.mean):
                pz = (count - peer.mean[b]) / math.sqrt(peer.std[b] ** 2 + cfg.min_variance)
                if pz < cfg.peer_z_threshold:
                    peer_z_ok = False
                else:
                    peer_z_ok = True
                    peer_text = (f" Their peer group ({group}) averages {peer.mean[b]:.1f} events in such an "
                                 f"hour (z = {pz:.1f}, threshold {cfg.peer_z_threshold}).")
                    peer_facts = {"peer_group": group, "peer_mean": peer.mean[b], "peer_z": round(pz, 2)}
            else:
                peer_z_ok = True
            if peer_z_ok:
                yield Hit(
                    key="volume", event=ev, score=min(95.0, 45 + 6 * (z - cfg.z_threshold) + 10),
                    title=f"Unusual volume: {count} events in one hour (usually {mean:.1f})",
                    explanation=(
                        f"This user had {count} events in {span}; their baseline for that hour of the "
                        f"{'weekend' if b >= 24 else 'week'} is {mean:.1f} (z = {z:.1f}, threshold "
                        f"{cfg.z_threshold}, at least {cfg.min_events} events).{peer_text}"
                    ),
                    facts={"rule": "volume", "count": count, "mean": round(mean, 3), "z": round(z, 2),
                           "bucket": b, **peer_facts},
                )
        if count >= cfg.off_hours_min_events and mean < cfg.off_hours_max_mean:
            yield Hit(
                key="hours", event=ev, score=50.0,
                title=f"Activity at unusual hours: {count} events",
                explanation=(
                    f"This user had {count} events in {span}, a time at which they are almost never "
                    f"active (baseline {mean:.2f} events; thresholds: at least {cfg.off_hours_min_events} "
                    f"events where the baseline is below {cfg.off_hours_max_mean})."
                ),
                facts={"rule": "hours", "count": count, "mean": round(mean, 3), "bucket": b},
            )

    def tidy(self, subject: str, state: dict[str, Any], ref: Reference, newest: float | None,
             clock: Clock, fold: Folding) -> bool:
        return "b" in state
