"""Runs a set of detectors over one subject's batch of events, isolating a failing detector.

Used unchanged by the Faust worker and by offline replay. If a detector raises on a batch, the batch
is run through that detector again one event at a time, from its state as it was before the batch, so
only the event(s) it fails on are reported (the runtime dead-letters them with the detector id); other
detectors are unaffected.

Each detector gets only the events it declares it needs (:meth:`detectors.base.Detector.needs`), in
arrival order, so it sees the same subsequence of a subject's events however they are batched. It is
not called for a batch with none of them, except a :attr:`~detectors.base.Detector.watermark` detector
that holds state for the subject: that one is called with no events and the batch's newest time, and
for each event it does get, with the newest time of the whole batch up to that event. A tick (``run``
with no events) calls every detector that holds state for the subject, and every detector that
declares no needs.

The subject's state is updated in place: ``run`` may change the dict it is given and returns it (or
None when nothing is left). To isolate a failure it needs the state as it was before the call: the
caller's ``pristine()`` if given (e.g. decoding the stored bytes again), else a copy the engine makes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import orjson

from .alert import Alert
from .base import Clock, Detector
from .event import Event
from .signal import Signal

_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class Failure:
    event: Event
    detector: str
    error: str


def _filter(kinds: frozenset[str] | None, getters: tuple[Callable[[Event], Any], ...]
            ) -> Callable[[Sequence[Event]], list[Event]]:
    """The events of one of ``kinds`` (None: any) with every field of ``getters`` set, in order
    (fields first: they are rarer)."""
    if not getters:
        return lambda evs: [e for e in evs if e.kind in kinds]  # type: ignore[operator]
    if len(getters) == 1:
        g = getters[0]
        if kinds is None:
            return lambda evs: [e for e in evs if g(e) is not None]
        return lambda evs: [e for e in evs if g(e) is not None and e.kind in kinds]
    if kinds is None:
        return lambda evs: [e for e in evs if all(g(e) is not None for g in getters)]
    return lambda evs: [e for e in evs if all(g(e) is not None for g in getters) and e.kind in kinds]


def _marks(events: Sequence[Event], sub: Sequence[Event]) -> list[float]:
    """For each event of ``sub`` (a subsequence of ``events``), the newest time of ``events`` up to it."""
    marks: list[float] = []
    k, m = 0, len(sub)
    newest = events[0].ts
    for e in events:
        if e.ts > newest:
            newest = e.ts
        if k < m and e is sub[k]:
            marks.append(newest)
            k += 1
    return marks


def _keep(state: dict[str, Any]) -> Callable[[], Any]:
    """A pristine() for ``state`` as it is now (serialised once; decoded only if needed)."""
    try:
        saved = orjson.dumps(state)
    except TypeError:
        kept = copy.deepcopy(state)
        return lambda: copy.deepcopy(kept)
    return lambda: orjson.loads(saved)


def _copy(value: Any) -> Any:
    """A deep copy of a JSON-able state (orjson round trip; deepcopy for anything else)."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:
        return copy.deepcopy(value)


class Engine:
    def __init__(
        self,
        detectors: Sequence[Detector],
        clock: Clock,
        observe: Callable[[str, float], None] | None = None,
    ) -> None:
        self.detectors = tuple(detectors)
        self.clock = clock
        self.observe = observe
        """Called with (detector id, seconds) after each detector call, e.g. to feed a histogram."""
        self.timer: Callable[[], float] = time.perf_counter
        """What ``observe``'s seconds are measured with (``bench/replay.py --breakdown``: CPU time)."""
        plan = []
        for d in self.detectors:
            needs = d.needs()
            kinds = needs.kinds if needs is not None else None
            getters = tuple(attrgetter(f) for f in needs.fields) if needs is not None else ()
            plan.append((d, d.id, needs is not None, kinds, getters, _filter(kinds, getters),
                         _filter(None, getters), bool(d.watermark)))
        self._plan = tuple(plan)
        self._risk = next((d for d in self.detectors if getattr(d, "accumulates", False)), None)
        """The person-risk accumulator (detectors.person_risk), if enabled: it gets every batch's
        signals and alerts after the other detectors have run; signals never reach the sink."""
        self._by_kind: dict[str, tuple[Any, ...]] = {}
        """Per event kind, the plan for a batch of one event of that kind: the detectors that may act
        on it, or (watermark detectors) whose watermark it moves."""

    def _plan_for(self, kind: str) -> tuple[Any, ...]:
        plan = self._by_kind.get(kind)
        if plan is None:
            plan = tuple(p for p in self._plan if p[3] is None or kind in p[3] or p[7])
            if len(self._by_kind) < 1024:
                self._by_kind[kind] = plan
        return plan

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.detectors)

    def run(
        self,
        subject: str,
        events: Sequence[Event],
        state: dict[str, Any] | None,
        *,
        pristine: Callable[[], dict[str, Any] | None] | None = None,
    ) -> tuple[dict[str, Any] | None, list[Alert], list[Failure]]:
        """Returns the subject's new state (``None`` when nothing is left), alerts and failures.

        ``state`` is updated in place (and returned). ``pristine``, if given, returns a fresh copy of
        the subject's whole state as it was before this call (e.g. decoded again from the stored
        bytes); it is called only when a detector fails. Without it the engine keeps its own copy."""
        st: dict[str, Any] = state if state is not None else {}
        alerts: list[Alert] = []
        signals: list[Signal] = []
        failures: list[Failure] = []
        clock = self.clock
        observe = self.observe
        if pristine is None and st:
            pristine = _keep(st)
        before: Any = _UNSET  # pristine(), fetched at the first failure

        n = len(events)
        top: float | None = None
        if n == 1:
            ev = events[0]
            top = ev.ts
            plan = self._plan_for(ev.kind)
        else:
            plan = self._plan
            if n:
                present = {e.kind for e in events}
                top = events[0].ts
                ordered = True
                for e in events:
                    t = e.ts
                    if t >= top:
                        top = t
                    else:
                        ordered = False

        for det, det_id, selective, kinds, getters, wanted_all, wanted_fields, watermark in plan:
            det_state = st.get(det_id)
            sub: Sequence[Event] = events
            marks: Sequence[float] | None = None
            upto: float | None = None
            if not selective:
                pass  # every event, every call
            elif n == 1:
                wanted = kinds is None or ev.kind in kinds
                if wanted and getters:
                    for g in getters:
                        if g(ev) is None:
                            wanted = False
                            break
                if not wanted:
                    if not watermark or det_state is None:
                        continue
                    sub, marks, upto = (), (), top  # none of its events: only its watermark moves
            elif n == 0:
                if det_state is None:
                    continue  # a tick: nothing to do without state
            else:
                if kinds is None or present <= kinds:
                    if getters:
                        sub = wanted_fields(events)
                elif present.isdisjoint(kinds):
                    sub = ()
                else:
                    sub = wanted_all(events)
                if len(sub) < n:
                    if not sub:
                        if not watermark or det_state is None:
                            continue
                        marks = ()
                    elif watermark and not ordered:
                        marks = _marks(events, sub)
                    if watermark:
                        upto = top
            started = self.timer() if observe is not None else 0.0
            try:
                if selective:
                    det_state, got = det.process_relevant(subject, sub, det_state, clock, marks, upto)
                else:
                    det_state, got = det.process(subject, sub, det_state, clock)
            except Exception:  # noqa: BLE001 - isolate the failing event, keep the worker running
                if before is _UNSET:
                    before = pristine() if pristine is not None else None
                base = before.get(det_id) if isinstance(before, dict) else None
                det_state, got = self._one_by_one(det, subject, sub, marks, upto, _copy(base), failures,
                                                  selective)
            if observe is not None:
                observe(det_id, self.timer() - started)
            if got:
                for a in got:
                    if type(a) is Signal:
                        signals.append(a)  # type: ignore[arg-type]
                    else:
                        alerts.append(a)
            if det_state is not None:
                st[det_id] = det_state
            elif det_id in st:
                del st[det_id]
        risk = self._risk
        if risk is not None and (signals or alerts or risk.id in st or (not n and st)):
            rid = risk.id
            started = self.timer() if observe is not None else 0.0
            try:
                rstate, got = risk.accumulate(subject, signals, alerts, st.get(rid), clock, top)  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - the events were processed; keep the old score
                if before is _UNSET:
                    before = pristine() if pristine is not None else None
                old = before.get(rid) if isinstance(before, dict) else None
                if old is not None:
                    st[rid] = _copy(old)
                else:
                    st.pop(rid, None)
                if events:
                    failures.append(Failure(events[-1], rid, f"{type(exc).__name__}: {exc}"[:500]))
            else:
                alerts.extend(got)
                if rstate is not None:
                    st[rid] = rstate
                elif rid in st:
                    del st[rid]
            if observe is not None:
                observe(rid, self.timer() - started)
        return (st or None), alerts, failures

    def _one_by_one(
        self,
        det: Detector,
        subject: str,
        events: Sequence[Event],
        marks: Sequence[float] | None,
        top: float | None,
        state: Any,
        failures: list[Failure],
        selective: bool,
    ) -> tuple[Any, list[Alert]]:
        """Each event alone, from the state before the batch; an event that fails leaves the state as
        it was before that event (detectors update state in place, so it is copied first)."""
        alerts: list[Alert] = []
        clock = self.clock
        for i, ev in enumerate(events):
            kept = _copy(state)
            try:
                if selective:
                    m = marks[i] if marks else ev.ts
                    state, got = det.process_relevant(subject, (ev,), state, clock, (m,), m)
                else:
                    state, got = det.process(subject, (ev,), state, clock)
            except Exception as exc:  # noqa: BLE001
                failures.append(Failure(ev, det.id, f"{type(exc).__name__}: {exc}"[:500]))
                state = kept
                continue
            alerts.extend(got)
        if selective and top is not None and state is not None:
            kept = _copy(state)
            try:  # the batch's other events still move the watermark on
                state, got = det.process_relevant(subject, (), state, clock, (), top)
                alerts.extend(got)
            except Exception:  # noqa: BLE001 - nothing to blame it on; keep the state as it was
                state = kept
        return state, alerts
