"""need_to_know: record look-ups without a business reason, of restricted records, or of neighbours.

Each look-up (``record_access``) is classified, possibly under several reasons (a document opened in
Drive or SharePoint, which has a ``custodes.object.id`` but names no record, count or dataset, is not a
look-up of a person's record and is not judged):

``no_case``       no case reference (``custodes.case.ref``)
``unknown_case``  a case reference the case register (reference kind ``case``) does not hold
                  (judged only once a case register is loaded)
``not_assigned``  a case the user is not assigned to
``restricted``    a record id flagged (``restricted_flags``) in the restricted-records register
``neighbour_in_case`` the same under a case the user is assigned to (``case_justifies_neighbour``):
                  their job, so only a weak signal for the person's risk, never an alert
``neighbour``     the record's postcode area (proposed field ``custodes.record.postcode_area``) is the
                  user's own home postcode area or district (staff directory)

Per reason, look-ups are counted in a sliding window of event time; more than ``max_per_window``
for that reason raises an alert (0: the first look-up does). Further hits within ``suppress_s`` fold
into it.

State (bounded): per reason, counts in ``bucket_s`` buckets over ``window_s + grace_s`` (at most
``(window_s + grace_s) / bucket_s + 1`` buckets, 5 reasons), plus the open alert windows (at most 5).
Look-ups older than the newest seen by more than ``window_s + grace_s`` are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from . import window
from .base import Clock, DetectorConfig, Needs
from .event import Event
from .fields import doc_str
from .masking import masked, placeholder
from .postcode import same_area
from .reference import Reference
from .suppression import Folding, Hit, RuleDetector, duration

REASONS = ("no_case", "unknown_case", "not_assigned", "restricted", "neighbour", "neighbour_in_case")
RECORD_AREA_FIELD = "custodes.record.postcode_area"


@dataclass(frozen=True)
class NeedToKnowConfig(DetectorConfig):
    kinds: tuple[str, ...] = ("record_access",)
    window_s: int = 86400
    bucket_s: int = 3600
    grace_s: int = 3600
    max_per_window: dict[str, int] = field(default_factory=lambda: {
        "no_case": 0, "unknown_case": 0, "not_assigned": 0, "restricted": 0, "neighbour": 0})
    """Look-ups per reason tolerated within the window; one more raises an alert."""
    scores: dict[str, float] = field(default_factory=lambda: {
        "no_case": 45.0, "unknown_case": 50.0, "not_assigned": 60.0, "restricted": 70.0, "neighbour": 75.0})
    """Alert score per reason."""
    restricted_flags: tuple[str, ...] = ("vip", "colleague", "need_to_know")
    """Flags in the restricted-records register that make a look-up `restricted`."""
    suppress_s: int = 86400
    case_justifies_neighbour: bool = True
    """A look-up in the user's home area under a case they are assigned to is their job (officers
    who live in the area they police work cases there), not a neighbour look-up."""
    signal_weights: dict[str, float] = field(default_factory=lambda: {
        "no_case": 4.0, "unknown_case": 6.0, "not_assigned": 8.0, "restricted": 10.0, "neighbour": 10.0,
        "neighbour_in_case": 0.0})
    """A look-up at or under ``max_per_window`` for its reason is a weak signal of this weight for
    the person's risk (detectors.person_risk) instead of nothing."""


class NeedToKnow(RuleDetector):
    id = "need_to_know"
    version = 1
    summary = "Record look-ups with no (or someone else's) case, of restricted records, or of neighbours."
    Config = NeedToKnowConfig
    config: NeedToKnowConfig

    def needs(self) -> Needs:
        return Needs(kinds=frozenset(self.config.kinds))

    def reasons(self, subject: str, ev: Event, ref: Reference) -> list[tuple[str, str, dict[str, Any]]]:
        """(reason, what was observed, facts) for one look-up."""
        out: list[tuple[str, str, dict[str, Any]]] = []
        if ev.case_ref is None:
            out.append(("no_case", "gave no case reference", {}))
        elif ref.cases:
            assigned = ref.cases.get(ev.case_ref)
            if assigned is None:
                out.append(("unknown_case", "gave a case reference that is not in the case register",
                            masked(case_ref=ev.case_ref)))
            elif subject not in assigned:
                out.append(("not_assigned",
                            f"gave case {placeholder('case_ref')}, to which the user is not assigned",
                            masked(case_ref=ev.case_ref)))
        restricted = ref.restricted
        if restricted and ev.record_ids:
            watched = self._watched
            flags = sorted({f for rid in ev.record_ids for f in restricted.get(rid, ()) if f in watched})
            if flags:
                out.append(("restricted", f"opened a record flagged {', '.join(flags)}", {"flags": flags}))
        person = ref.staff.get(subject)
        justified = ev.case_ref is not None and ref.cases and subject in ref.cases.get(ev.case_ref, ())
        if person is not None and person.home_postcode_area:
            area = doc_str(ev, RECORD_AREA_FIELD)
            near = bool(area) and same_area(area, person.home_postcode_area)
            if near and justified and self.config.case_justifies_neighbour:
                out.append(("neighbour_in_case", "opened a record in the user's own home postcode area under a case "
                            "they are assigned to", {"postcode_area": area}))
            elif near:
                out.append(("neighbour", "opened a record in the user's own home postcode area "
                            f"({placeholder('home_area')}, staff directory)",
                            masked(postcode_area=area, home_area=person.home_postcode_area)))
        return out

    @cached_property
    def _watched(self) -> frozenset[str]:
        return frozenset(self.config.restricted_flags)

    @cached_property
    def _kinds(self) -> frozenset[str]:
        return frozenset(self.config.kinds)

    def scan(self, subject: str, events: Sequence[Event], marks: Sequence[float] | None,
             state: dict[str, Any], ref: Reference, newest: float | None
             ) -> tuple[float | None, list[tuple[Hit, float]] | None]:
        """:meth:`hits` over the events, skipping at once a look-up that cannot have a reason: a case
        the user is assigned to (or any case, without a register), no restricted register or no record
        ids, and no home area for the user."""
        kinds = self._kinds
        cases = ref.cases
        restricted = ref.restricted
        person = ref.staff.get(subject)
        home = person is not None and bool(person.home_postcode_area)
        justifies = self.config.case_justifies_neighbour
        found: list[tuple[Hit, float]] | None = None
        for i, ev in enumerate(events):
            at = ev.ts if marks is None else marks[i]
            if newest is None or at > newest:
                newest = at
            if ev.kind not in kinds:
                continue
            case = ev.case_ref
            if (case is not None and not (restricted and ev.record_ids)
                    and (not cases or subject in cases.get(case, ()))
                    and (not home or (cases and justifies))):
                continue  # no reason
            for hit in self.hits(subject, ev, state, ref, newest):
                if found is None:
                    found = []
                found.append((hit, newest))
        return newest, found

    def hits(self, subject: str, ev: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        cfg = self.config
        if ev.kind not in cfg.kinds or ev.ts <= newest - cfg.window_s - cfg.grace_s:
            return ()
        if ev.object_id is not None and not ev.record_ids and ev.record_count is None and ev.dataset is None:
            return ()  # a document opened (Drive, SharePoint), naming no record or dataset: not a look-up
        found = self.reasons(subject, ev, ref)
        if not found:
            return ()
        out = []
        counts: dict[str, list[list[float]]] = state.setdefault("c", {})
        for reason, observed, facts in found:
            buckets = counts.setdefault(reason, [])
            window.add(buckets, ev.ts, cfg.bucket_s)
            n = int(window.peak(buckets, ev.ts, cfg.window_s, cfg.bucket_s))
            limit = cfg.max_per_window.get(reason, 0)
            if n <= limit or reason not in cfg.scores:  # no score: a signal only
                weight = cfg.signal_weights.get(reason, 0.0)
                if weight > 0:
                    out.append(Hit(key=reason, event=ev, score=0.0, title="",
                                   explanation=f"look-up that {observed}"[:160], signal=weight))
                continue
            span = duration(cfg.window_s)
            counted = (f" It is look-up number {n} for this reason within {span} (more than {limit} "
                       f"raises an alert; detectors.need_to_know.max_per_window)." if limit else "")
            out.append(Hit(
                key=reason, event=ev, score=cfg.scores.get(reason, 50.0),
                title=f"Need to know: {reason.replace('_', ' ')} look-up",
                explanation=(f"This user looked up {ev.dataset or 'a record'} and {observed}.{counted}"),
                facts={"reason": reason, "lookups_in_window": n, "max_per_window": limit,
                       "window_s": cfg.window_s, **facts},
            ))
        return out

    def tidy(self, subject: str, state: dict[str, Any], ref: Reference, newest: float | None,
             clock: Clock, fold: Folding | None) -> bool:
        cfg = self.config
        counts = state.get("c")
        if not counts:
            state.pop("c", None)
            return False
        if newest is not None:
            horizon = newest - cfg.window_s - cfg.grace_s
            for reason in list(counts):
                buckets = counts[reason]
                if buckets and buckets[0][0] + cfg.bucket_s > horizon:
                    continue  # sorted: nothing to drop
                kept = window.prune(buckets, horizon, cfg.bucket_s)
                if kept:
                    counts[reason] = kept
                else:
                    del counts[reason]
        if not counts:
            del state["c"]
        return bool(counts)
