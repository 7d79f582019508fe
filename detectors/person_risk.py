"""person_risk: one alert per person and episode when their accumulated, decayed risk crosses a threshold.

Indicators (:class:`detectors.signal.Indicator`) return weighted signals, not reviewer alerts; every
other detector's alerts (bulk export, third-party transfer, ...) go to the reviewers as before and
also count here, ``alert_factor`` x their peak score per alert id. An alert lists its hits
(:attr:`detectors.alert.Alert.hits`): each hit that raises the alert's peak adds the rise in that
hit's hour, so the points do not depend on how the stream was cut into calls (a version's score
holds every hit of its call, later ones included). The engine hands this detector each batch's
signals and alerts (:meth:`PersonRisk.accumulate`); it never sees events. States stored before keep
direct alerts not yet counted under ``a``; they are still counted when their hour settles.

Risk = sum over signals of ``weight x context multiplier x 0.5 ** (age / half_life)``. The context
multiplier comes from the staff directory at the signal's time: inside the departure window (from
``departing_before_days`` before the notice date to ``departing_after_days`` after the leave date)
``departing_multiplier``; ``suspended_multiplier``, ``restricted_duties_multiplier`` and
``privileged_multiplier`` while those hold. Multipliers multiply.

Order does not matter within a grace: signals are held per hour of event time (``bucket_s``) and an
hour is added to the sum only once the person's newest event is ``grace_s`` past its end, every
signal of the hour as if at the hour's end. An episode opens at the first hour whose sum reaches
``threshold``; its alert id is ``alert_id("person_risk", person, "episode:<hour end>")``, so each
later hour that adds signals updates the same alert (the store upserts it). The episode closes when
the decayed sum falls below ``close_ratio x threshold``; crossing again opens a new one. A call that
settles several hours of one episode returns only its last version (the one the store keeps), so
``custodes_alerts_raised_total`` counts one per episode and call, not one per hour.

State (bounded): the sum and its reference time, at most ``max_contributions`` contributions (points,
signal count, last 2 event ids, a 60-character note), pending hours (at most ``(grace_s + bucket_s) / bucket_s + 1`` of
them in order, ``max_pending`` signal keys each), at most ``max_alerts`` direct alert ids remembered
for ``alert_memory_s``, the open episode. It disappears once everything has decayed below 0.5 points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .alert import EVIDENCE_EVENTS_MAX, Alert, alert_id
from .base import Clock, Detector, DetectorConfig, Needs
from .masking import MASKED_FACTS, fill
from .reference import Staff
from .signal import DAY, Signal, departing
from .suppression import duration, severity_for, when

IDS_KEPT = 2
NOTE_CHARS = 60
FLOOR = 0.5
"""Points below which a contribution (and a whole state) is forgotten."""


@dataclass(frozen=True)
class PersonRiskConfig(DetectorConfig):
    half_life_days: float = 7.0
    """Risk points halve every this many days."""
    threshold: float = 50.0
    """A person's decayed risk at or over this opens an episode and raises (or updates) their alert."""
    close_ratio: float = 0.5
    """The episode closes when the risk falls below this share of the threshold."""
    bucket_s: int = 3600
    grace_s: int = 3600
    alert_factor: float = 0.5
    """Risk points per point of a direct alert's score (an alert of score 70 adds 35)."""
    departing_before_days: float = 14.0
    """Departure window: days before the notice date (signals inside count more)."""
    departing_after_days: float = 30.0
    """Departure window: days after the leave date."""
    notice_days: float = 30.0
    """Assumed notice period when only one of notice date and leave date is known."""
    departing_multiplier: float = 2.0
    """Signals in the departure window count this many times."""
    suspended_multiplier: float = 2.0
    """Signals while suspended count this many times."""
    restricted_duties_multiplier: float = 1.5
    """Signals while on restricted duties count this many times."""
    privileged_multiplier: float = 1.5
    """Signals of a person with privileged access count this many times."""
    max_contributions: int = 16
    """Contributions (indicator and reason) kept per person; the smallest make way."""
    max_pending: int = 24
    """Hours of signals held until their hour is settled."""
    max_alerts: int = 32
    """Ids of other detectors' alerts remembered so each counts once."""
    alert_memory_s: int = 7 * 86400
    """How long (seconds) an alert id is remembered."""


def context(person: Staff | None, ts: float, cfg: PersonRiskConfig) -> tuple[float, list[str]]:
    """The context multiplier at ``ts`` and the words for it."""
    if person is None:
        return 1.0, []
    m, why = 1.0, []
    if departing(person, ts, cfg.departing_before_days * DAY, cfg.departing_after_days * DAY, cfg.notice_days * DAY):
        m *= cfg.departing_multiplier
        why.append("departing (notice/leave date, staff directory)")
    if person.suspended and (person.suspended_at is None or ts >= person.suspended_at):
        m *= cfg.suspended_multiplier
        why.append("suspended")
    if person.restricted_duties:
        m *= cfg.restricted_duties_multiplier
        why.append("on restricted duties")
    if person.privileged:
        m *= cfg.privileged_multiplier
        why.append("privileged access")
    return m, why


class PersonRisk(Detector):
    id = "person_risk"
    version = 1
    summary = "One alert per person when the decayed sum of their indicators' signals and alerts crosses a threshold."
    Config = PersonRiskConfig
    config: PersonRiskConfig
    accumulates = True
    """The engine calls :meth:`accumulate` with each batch's signals and alerts, after the others."""

    def needs(self) -> Needs:
        return Needs(kinds=frozenset())  # no events: the engine feeds it signals and alerts

    def process(self, subject: str, events: Sequence[Any], state: Any | None, clock: Clock
                ) -> tuple[Any | None, list[Alert]]:
        return state, []

    # -- the accumulator --------------------------------------------------------------------------

    def accumulate(self, subject: str, signals: Sequence[Signal], alerts: Sequence[Alert], state: Any | None,
                   clock: Clock, top: float | None) -> tuple[Any | None, list[Alert]]:
        cfg = self.config
        if state is None and not signals and not alerts:
            return None, []
        st: dict[str, Any] = state if state is not None else {}
        pending: dict[str, dict[str, list[Any]]] = st.setdefault("p", {})
        if signals:
            hold = self._hold
            bucket_s = cfg.bucket_s
            floor = math.floor
            hours: dict[int, str] = {}  # hour number -> its pending key, repr(bucket start)
            for sig in signals:
                ts = sig.ts
                n = floor(ts / bucket_s)
                hour = hours.get(n)
                if hour is None:
                    hour = hours[n] = repr(float(n * bucket_s))
                hold(pending, f"{sig.indicator}:{sig.reason}", hour, sig.weight, sig.event_id, ts, sig.note)
        if alerts:
            for a in alerts:
                if a.detector != self.id:
                    self._hold_hits(st, pending, a)
        if top is not None and (st.get("n") is None or top > st["n"]):
            st["n"] = top
        newest = st.get("n")
        if not signals and not alerts and top is None:  # a tick: the clock may settle what is due
            now = clock()
            if newest is None or now > newest:
                newest = now
        out: list[Alert] = []
        if newest is not None:
            self._settle(subject, st, newest, out)
            if "r" in st:
                left = st["s"] * math.pow(0.5, max(0.0, newest - st["r"]) / (cfg.half_life_days * DAY))
                if "e" in st and left < cfg.close_ratio * cfg.threshold:
                    del st["e"]
                if left < FLOOR and "e" not in st and not st.get("p") and not any(
                        not r[3] for r in (st.get("a") or {}).values()):
                    return None, out  # everything has decayed away
        return self._tidy(st), out

    def _hold_hits(self, st: dict[str, Any], pending: dict[str, dict[str, list[Any]]], a: Alert) -> None:
        """A direct alert: each of its hits (:attr:`Alert.hits`, in arrival order; an alert that lists
        none stands for one hit at its ``ts`` and score) that raises the alert's peak score is held in
        its own hour as ``alert_factor`` x the rise. So the alert counts ``alert_factor`` x its peak in
        all, each part at the hour of the hit that brought it, however the stream was cut into calls
        (a version's score already holds every hit of its call, later ones included).
        ``h``: alert id -> [peak counted, newest hit time], at most ``max_alerts``, each kept for
        ``alert_memory_s`` after its newest hit."""
        cfg = self.config
        peaks: dict[str, list[Any]] = st.setdefault("h", {})
        rec = peaks.get(a.id)
        if rec is None:
            rec = peaks[a.id] = [0.0, a.first_seen]
            if len(peaks) > cfg.max_alerts:
                for k in sorted(peaks, key=lambda k: peaks[k][1])[: len(peaks) - cfg.max_alerts]:
                    if k != a.id:
                        del peaks[k]
        hits = a.hits or ((a.ts, a.score, a.evidence_event_ids[-1] if a.evidence_event_ids else a.id),)
        note = None
        for ts, score, event_id in hits:
            if ts > rec[1]:
                rec[1] = ts
            if score > rec[0]:
                if note is None:  # the title's placeholders ({recipient_party}) as masked tokens
                    note = "alert: " + fill(a.title, a.facts.get(MASKED_FACTS), reveal=False)
                self._hold(pending, f"{a.detector}:alert", repr(self._bucket(ts)),
                           round((score - rec[0]) * cfg.alert_factor, 4), event_id, ts, note)
                rec[0] = score

    def _bucket(self, ts: float) -> float:
        b = self.config.bucket_s
        return float(math.floor(ts / b) * b)

    def _hold(self, pending: dict[str, dict[str, list[Any]]], key: str, bucket: str, weight: float,
              event_id: str, ts: float, note: str) -> None:
        """Holds one signal in its hour (``bucket``: the hour's start as its pending key, ``repr(float)``)."""
        hour = pending.setdefault(bucket, {})
        rec = hour.get(key)
        if rec is None:
            if len(hour) >= self.config.max_pending:
                key = "other"  # a flood of different signals in one hour: pooled, still counted
                rec = hour.get(key)
            if rec is None:
                rec = hour[key] = [0.0, 0, [], ts, note[:NOTE_CHARS]]
        rec[0] = round(rec[0] + weight, 4)
        rec[1] += 1
        ids: list[str] = rec[2]
        if event_id not in ids:
            ids.append(event_id)
            ids.sort()
            del ids[:-IDS_KEPT]
        if ts >= rec[3]:
            rec[3] = ts
            rec[4] = note[:NOTE_CHARS]

    def _settle(self, subject: str, st: dict[str, Any], newest: float, out: list[Alert]) -> None:
        cfg = self.config
        pending = st.get("p") or {}
        known = st.get("a") or {}
        due_before = newest - cfg.grace_s - cfg.bucket_s  # an hour is due once its end + grace has passed
        due = {h for h in map(float, pending) if h <= due_before}
        bucket = self._bucket
        waiting = False  # direct alerts not yet counted, due
        for r in known.values():
            if not r[3]:
                b = bucket(r[0])
                if b <= due_before:
                    due.add(b)
                    waiting = True
        held: list[Any] = []  # the open episode's alert, built only if no later hour of this call updates it
        for b in sorted(due):
            items = pending.pop(repr(b), {})
            if not waiting:
                if items:
                    self._add_hour(subject, st, b + cfg.bucket_s, items, out, held)
                continue
            for aid in sorted(known):
                rec = known[aid]
                if not rec[3] and bucket(rec[0]) <= b:
                    rec[3] = 1
                    items[f"{rec[2]}:alert"] = _merge(items.get(f"{rec[2]}:alert"), [
                        round(rec[1] * cfg.alert_factor, 4), 1, rec[4], rec[0], f"alert: {rec[5]}"[:NOTE_CHARS]])
            if items:
                self._add_hour(subject, st, b + cfg.bucket_s, items, out, held)
        if held:
            out.append(self._alert(subject, st, *held))
        expired = [k for k, r in known.items() if r[3] and r[0] + cfg.alert_memory_s <= newest]
        for k in expired:
            del known[k]
        peaks = st.get("h")
        if peaks:
            for k in [k for k, r in peaks.items() if r[1] + cfg.alert_memory_s <= newest]:
                del peaks[k]

    def _add_hour(self, subject: str, st: dict[str, Any], end: float, items: dict[str, list[Any]],
                  out: list[Alert], held: list[Any]) -> None:
        """Adds one settled hour. The open episode's alert is not built here but held (``held``: its
        episode, multiplier and context words); the next hour that updates the same episode replaces
        it, and it is built (from the state as this hour left it) before anything else changes that
        state, or when the call ends: one alert per episode and call, the last version."""
        cfg = self.config
        half = cfg.half_life_days * DAY
        total = st.get("s", 0.0)
        ref = st.get("r", end)
        factor = math.pow(0.5, (end - ref) / half) if end > ref else 1.0
        late = math.pow(0.5, (ref - end) / half) if end < ref else 1.0  # an hour settled out of order
        end = max(end, ref)
        total *= factor
        episode = st.get("e")
        closes = episode is not None and total < cfg.close_ratio * cfg.threshold
        if held and (closes or not any(r[1] for r in items.values())):
            out.append(self._alert(subject, st, *held))  # this hour will not update the held alert
            held.clear()
        contrib: dict[str, list[Any]] = st.setdefault("c", {})
        if factor != 1.0:  # (x * 1.0 is x)
            for rec in contrib.values():
                rec[0] *= factor
        if closes:
            episode = None
            st.pop("e", None)
        multiplier, why = context(self.ref.staff.get(subject), end, cfg)
        added = 0
        for key in sorted(items):
            w, n, ids, last, note = items[key]
            points = w * multiplier * late
            total += points
            added += n
            rec = contrib.get(key)
            if rec is None:
                rec = contrib[key] = [0.0, 0, [], last, note]
            rec[0] += points
            rec[1] += n
            rec[2] = sorted({*rec[2], *ids})[-IDS_KEPT:]
            if last >= rec[3]:
                rec[3], rec[4] = last, note
        for key in [k for k, r in contrib.items() if r[0] < FLOOR]:
            del contrib[key]
        if len(contrib) > cfg.max_contributions:
            for key in sorted(contrib, key=lambda k: contrib[k][0])[: len(contrib) - cfg.max_contributions]:
                del contrib[key]
        for rec in contrib.values():
            rec[0] = round(rec[0], 4)
        st["s"], st["r"] = round(total, 4), end
        if episode is None and total >= cfg.threshold:
            episode = st["e"] = [end, sum(r[1] for r in contrib.values()) - added, end]  # count: all signals
        if episode is not None and added:
            episode[1] += added
            episode[2] = end
            held[:] = (episode, multiplier, why)

    def _alert(self, subject: str, st: dict[str, Any], episode: list[Any], multiplier: float,
               why: list[str]) -> Alert:
        cfg = self.config
        total = st["s"]
        contrib = st.get("c", {})
        ranked = sorted(contrib.items(), key=lambda kv: (-kv[1][0], kv[0]))
        rows = [{"indicator": indicator, "reason": reason, "points": round(r[0], 1),
                 "signals": r[1], "event_ids": list(r[2]), "last_seen": r[3], "note": r[4]}
                for (indicator, _, reason), r in ((k.partition(":"), r) for k, r in ranked)]
        ids: list[str] = []
        for r in rows:
            for i in r["event_ids"]:
                if i not in ids and len(ids) < EVIDENCE_EVENTS_MAX:
                    ids.append(i)
        parts = [f"{r['indicator']} ({r['reason'].replace('_', ' ')}): {r['points']:.0f} points from "
                 f"{r['signals']} signal{'s' if r['signals'] != 1 else ''}" for r in rows[:6]]
        ctx = f" Context multiplier x{multiplier:g} ({', '.join(why)})." if why else ""
        explanation = (
            f"This person's risk reached {total:.0f} points (threshold {cfg.threshold:g}, half-life "
            f"{duration(int(cfg.half_life_days * DAY))}) at {when(episode[2])}. Largest contributions: "
            f"{'; '.join(parts)}.{ctx} Each contribution lists its evidence events; none of these "
            f"alone raises an alert.")
        score = round(min(100.0, total), 1)
        return Alert(
            id=alert_id(self.id, subject, f"episode:{episode[0]!r}"), detector=self.id,
            detector_version=self.version, severity=severity_for(score), score=score, subject=subject,
            title=f"Person risk {total:.0f}: {len(rows)} kinds of signal",
            explanation=explanation, ts=episode[2], first_seen=episode[0] - cfg.bucket_s, last_seen=episode[2],
            evidence_event_ids=tuple(ids), count=episode[1],
            facts={"risk": total, "threshold": cfg.threshold, "half_life_days": cfg.half_life_days,
                   "multiplier": multiplier, "context": why, "contributions": rows, "key": "episode"},
        )

    def _tidy(self, st: dict[str, Any]) -> dict[str, Any] | None:
        if not st.get("p"):
            st.pop("p", None)
        if not st.get("a"):
            st.pop("a", None)
        if not st.get("h"):
            st.pop("h", None)
        if not st.get("c"):
            st.pop("c", None)
        if st.get("s", 0.0) < FLOOR and "e" not in st:
            st.pop("s", None)
            st.pop("r", None)
            st.pop("c", None)
        if not any(k in st for k in ("p", "a", "h", "c", "s", "e")):
            return None
        return st


def _merge(old: list[Any] | None, new: list[Any]) -> list[Any]:
    """Two pending entries for the same key in one hour -> one."""
    if old is None:
        return new
    ids = sorted(set(old[2]) | set(new[2]))[-IDS_KEPT:]
    later = new if new[3] >= old[3] else old
    return [old[0] + new[0], old[1] + new[1], ids, later[3], later[4]]
