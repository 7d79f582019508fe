"""``custodes generate``: the synthetic organisation's events, reference data and ground truth.

Output in ``DIR``:

``events.jsonl``                canonical audit events (one JSON object per line, sorted by event time)
``device_notifications.jsonl``  managed-phone notifications in the device export format, sorted
``reference/``                  staff.jsonl, cases.jsonl, restricted.jsonl, sharing.jsonl, apps.jsonl,
                                destinations.jsonl (risk categories), peers.jsonl (peer baselines
                                from the ``PEER_HISTORY_DAYS`` of ordinary work before the period,
                                with what each group commonly uses and its usual day of removable
                                media and attachments), hosts.jsonl (hosts one person dominates in
                                that history: learned owners)
``truth.jsonl``                 one line per insider: scenario, user_id, start, end, event_ids, detectors
``manifest.json``               the parameters, the period (``start``/``end``) and the counts

Memory is constant in the number of events: each member of staff is a generator that plans one day at
a time and yields its events in time order; :func:`heapq.merge` interleaves them and every event is
written as soon as it is merged. What is held is O(staff) (people, cases, one pending day each) plus
the ids of the insiders' malicious events.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from .behaviour import plan_day
from .organisation import TRAITS, Organisation, Person, build
from .render import iso, render
from .scenarios import Scenario, plan_scenarios, truth_record

PEER_HISTORY_DAYS = 21
"""Peer baselines (reference kind ``peer``) are built from this many days of the organisation's ordinary
work before the period, as a site builds them from last month's archive (``custodes reference peers``)."""

DEFAULT_START = date(2026, 3, 18)
"""A Wednesday; the fortnight from it ends with the month-end reporting days (30 and 31 March)."""

Item = tuple[float, int, int, bool, bytes]
"""(event time, staff index, sequence number, is a device notification, the JSON line)."""


class Truth:
    """The malicious event ids and times of each scenario, collected as the events are rendered."""

    def __init__(self, scenarios: list[Scenario]) -> None:
        self.scenarios = scenarios
        self.ids: dict[int, list[str]] = {id(s): [] for s in scenarios}
        self.times: dict[int, list[float]] = {id(s): [] for s in scenarios}

    def add(self, scenario: Scenario, event_id: str, ts: float) -> None:
        self.ids[id(scenario)].append(event_id)
        self.times[id(scenario)].append(ts)

    def records(self) -> list[dict]:
        return [truth_record(s, self.ids[id(s)], self.times[id(s)]) for s in self.scenarios
                if self.ids[id(s)]]


def peer_records(org: Organisation, days: int = PEER_HISTORY_DAYS) -> list[dict]:
    """Peer baselines from ``days`` of ordinary work (no scenarios) before the period: per group, each
    hour's events per member (mean and mean square) folded into its bucket exactly as
    :class:`detectors.peers.PeerAggregator` folds them (a plain average for the first 1/alpha hours of
    a bucket, then an EWMA), computed from hourly counts at once rather than event by event."""
    import math
    from collections import Counter, defaultdict

    from detectors.peers import BUCKETS, bucket_of

    alpha = 0.05
    members = Counter(f"{p.team}/{p.role}" for p in org.staff)
    hourly: dict[str, dict[float, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for p in org.staff:
        g = f"{p.team}/{p.role}"
        for day in range(-days, 0):
            for ts, _, _ in plan_day(org, p, day, travel=False):
                if ts < org.day_start(0):
                    hourly[g][math.floor(ts / 3600) * 3600.0][p.idx] += 1
    first, last = org.day_start(-days), org.day_start(0)
    out = []
    for g in sorted(hourly):
        n = max(members[g], 1)
        m, q, k = [0.0] * BUCKETS, [0.0] * BUCKETS, [0] * BUCKETS
        h = first
        while h < last:
            xs = hourly[g].get(h, {}).values()
            b = bucket_of(h)
            k[b] += 1
            a = max(alpha, 1 / k[b])
            m[b] += a * (sum(xs) / n - m[b])
            q[b] += a * (sum(x * x for x in xs) / n - q[b])
            h += 3600.0
        std = [math.sqrt(max(qq - mm * mm, 0.0)) for mm, qq in zip(m, q, strict=True)]
        out.append({"group": g, "mean": [round(x, 4) for x in m], "std": [round(s, 4) for s in std], "members": n})
    return out


def person_stream(org: Organisation, person: Person, scenario: Scenario | None, truth: Truth | None,
                  travel: bool = True, days: range | None = None) -> Iterator[Item]:
    """One member of staff's events in time order (plans a day at a time; yields what is due)."""
    pending: list[tuple[float, int, str, dict, bool]] = []
    n = seq = 0
    end = org.end
    prefix = f"s{org.seed}-{person.idx:05d}-"
    idx = person.idx
    pop, push, dumps = heapq.heappop, heapq.heappush, orjson.dumps
    malicious = truth is not None and scenario is not None
    span = days if days is not None else range(org.days)
    for day in [*span, None]:
        before = org.day_start(day) if day is not None else float("inf")
        while pending and pending[0][0] < before:  # everything planned so far that is due
            ts, _, kind, payload, bad = pop(pending)
            if ts >= end:
                continue
            seq += 1
            event_id = f"{prefix}{seq:06d}"
            is_device, doc = render(person, kind, payload, ts, event_id)
            if bad and malicious:
                truth.add(scenario, event_id, ts)  # type: ignore[union-attr]
            yield ts, idx, seq, is_device, dumps(doc)
        if day is None:
            break
        for ts, kind, payload in plan_day(org, person, day, travel=travel):
            n += 1
            push(pending, (ts, n, kind, payload, False))
        if scenario is not None and day in scenario.days:
            for ts, kind, payload in scenario.days[day]:
                n += 1
                push(pending, (ts, n, kind, payload, True))


def merged(org: Organisation, scenarios: list[Scenario], truth: Truth | None, travel: bool = True) -> Iterator[Item]:
    """Every member of staff's stream, merged in event time order (ties: staff index, sequence)."""
    by_person = {s.person.idx: s for s in scenarios}
    streams = [person_stream(org, p, by_person.get(p.idx), truth, travel) for p in org.staff]
    return heapq.merge(*streams)


def history_profile(org: Organisation, reference_dir: Path, days: int = PEER_HISTORY_DAYS
                    ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """What each peer group commonly uses and its usual day of removable media and attachments (fields
    added to its ``peer`` record), and the hosts one person dominates (``host`` records), learned by
    :class:`detectors.peer_profile.PeerProfiler` from the same ``days`` of ordinary work before the
    period as the peer baselines (canonical events only; no scenarios)."""
    from collections import Counter

    from detectors.peer_profile import PeerProfiler
    from stream.contract.codec import Invalid, validate
    from stream.detection.reference import load_dir

    ref = load_dir(reference_dir)
    members = Counter(p.peer_group for p in ref.staff.values() if p.peer_group)
    profiler = PeerProfiler(members, ref)
    first = org.day_start(0)
    for person in org.staff:
        group = f"{person.team}/{person.role}"
        for ts, _, _, is_device, line in person_stream(org, person, None, None, travel=False, days=range(-days, 0)):
            if is_device or ts >= first:
                continue
            try:
                ev = validate(orjson.loads(line))
            except Invalid:
                continue
            profiler.add(ev, group)
    return profiler.peer_extras(), profiler.host_records()


@dataclass
class Generated:
    events: int
    device_notifications: int
    insiders: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        total = self.events + self.device_notifications
        return total / self.seconds if self.seconds > 0 else 0.0


def generate(out: Path, staff: int, days: int, seed: int, start: date = DEFAULT_START,
             insider_rate: float = 0.02, travel: bool = True,
             progress: Callable[[int], None] | None = None) -> Generated:
    """Write the organisation, its events and the ground truth to ``out`` (see the module docstring)."""
    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    org = build(seed, staff, days, start)
    scenarios = plan_scenarios(org, insider_rate, seed)  # may set leave dates: before the reference
    org.write_reference(out / "reference")
    shipped = Path(__file__).resolve().parents[2] / "config" / "reference" / "destinations.jsonl"
    if shipped.is_file():
        (out / "reference" / "destinations.jsonl").write_bytes(shipped.read_bytes())
    extras, hosts = history_profile(org, out / "reference")
    with (out / "reference" / "peers.jsonl").open("wb") as f:
        for rec in peer_records(org):
            f.write(orjson.dumps({**rec, **extras.get(rec["group"], {})}) + b"\n")
    with (out / "reference" / "hosts.jsonl").open("wb") as f:
        for rec in hosts:
            f.write(orjson.dumps(rec) + b"\n")
    truth = Truth(scenarios)
    n_events = n_device = 0
    with (out / "events.jsonl").open("wb", buffering=1 << 20) as events, \
            (out / "device_notifications.jsonl").open("wb", buffering=1 << 20) as device:
        for _, _, _, is_device, line in merged(org, scenarios, truth):
            if is_device:
                device.write(line + b"\n")
                n_device += 1
            else:
                events.write(line + b"\n")
                n_events += 1
            if progress is not None and (n_events + n_device) % 100_000 == 0:
                progress(n_events + n_device)
    records = truth.records()
    with (out / "truth.jsonl").open("wb") as f:
        for rec in records:
            f.write(orjson.dumps(rec) + b"\n")
    manifest = {"seed": seed, "staff": staff, "days": days, "start": iso(org.day_start(0)), "end": iso(org.end),
                "insider_rate": insider_rate, "insiders": len(records), "events": n_events,
                "device_notifications": n_device,
                "lookalikes": {**{t: [p.user_id for p in org.staff if t in p.traits] for t in TRAITS},
                               "new_starter": [p.user_id for p in org.staff if p.start_day is not None],
                               "benign_leaver": [p.user_id for p in org.staff if p.leave_day is not None
                                                 and p.notice_day is None]}}
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    return Generated(n_events, n_device, len(records), time.perf_counter() - began)
