"""Runs a set of detectors over one subject's batch of events, isolating a failing detector.

Used unchanged by the Faust worker and by offline replay. If a detector raises on a batch, the batch
is run through that detector again one event at a time so only the event(s) it fails on are
reported (the runtime dead-letters them with the detector id); other detectors are unaffected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .alert import Alert
from .base import Clock, Detector
from .event import Event


@dataclass(frozen=True, slots=True)
class Failure:
    event: Event
    detector: str
    error: str


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

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.detectors)

    def run(
        self, subject: str, events: Sequence[Event], state: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | None, list[Alert], list[Failure]]:
        """Returns the subject's new state (``None`` when nothing is left), alerts and failures."""
        old = state or {}
        new: dict[str, Any] = {}
        alerts: list[Alert] = []
        failures: list[Failure] = []
        for det in self.detectors:
            det_state = old.get(det.id)
            started = time.perf_counter()
            try:
                det_state, det_alerts = det.process(subject, events, det_state, self.clock)
            except Exception:  # noqa: BLE001 - isolate the failing event, keep the worker running
                det_state, det_alerts = self._one_by_one(det, subject, events, det_state, failures)
            if self.observe is not None:
                self.observe(det.id, time.perf_counter() - started)
            alerts.extend(det_alerts)
            if det_state is not None:
                new[det.id] = det_state
        return (new or None), alerts, failures

    def _one_by_one(
        self,
        det: Detector,
        subject: str,
        events: Sequence[Event],
        state: Any,
        failures: list[Failure],
    ) -> tuple[Any, list[Alert]]:
        alerts: list[Alert] = []
        for ev in events:
            try:
                state, got = det.process(subject, (ev,), state, self.clock)
            except Exception as exc:  # noqa: BLE001
                failures.append(Failure(ev, det.id, f"{type(exc).__name__}: {exc}"[:500]))
                continue
            alerts.extend(got)
        return state, alerts
