"""leaver_activity: an account used after its holder left, and leavers still in monitored groups
(the WhatsApp group of 241 members with no process for removing leavers).

The leave date comes from the staff directory (reference kind ``staff``): a date is the last day of
employment (activity from the following midnight UTC counts), a date-time is the exact moment.
Rules, per event of the user at or after ``left_at + after_leave_s``:

* any activity (a membership ``leave``/``remove`` is the fix, not a problem) -> key ``activity``;
* a membership ``join``/``member`` event (``custodes.activity = membership``, ``event.action``;
  ``member`` is a roster snapshot reporting the user as present) of a monitored group, or a group the
  state remembers the user joining and not leaving -> key ``group:<id>``.

When the runtime calls the detector with no events (a timer sweep), remembered memberships are
checked against the clock instead, so a leaver who does nothing is still found.

State (bounded): remembered memberships ``{"g": {group id: [event time, 1 present | 0 left]}}``, at
most ``max_groups`` (oldest dropped first; a ``left`` entry is dropped ``grace_s`` after it), plus
the open alert windows. A user with no memberships and no open window has no state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .alert import Alert
from .base import Clock, DetectorConfig, Needs
from .event import Event
from .reference import Reference
from .suppression import Folding, Hit, RuleDetector, when

DATA_KINDS = frozenset({"record_access", "export", "share", "print", "removable_media", "web_upload"})


@dataclass(frozen=True)
class LeaverActivityConfig(DetectorConfig):
    after_leave_s: int = 0
    """Activity this long after the leave moment is tolerated (e.g. an agreed hand-over)."""
    monitored_groups: tuple[str, ...] = ()
    """Group ids whose membership is tracked; empty = every group seen."""
    join_actions: tuple[str, ...] = ("join", "add", "member")
    """`event.action` words that mean someone joined a monitored group."""
    leave_actions: tuple[str, ...] = ("leave", "remove")
    """`event.action` words that mean someone left (or was removed from) a monitored group."""
    max_groups: int = 64
    """Group memberships kept per person (the oldest make way)."""
    activity_score: float = 70.0
    """Score of activity after the leave date."""
    data_activity_score: float = 90.0
    """Score when the activity after leaving touched data (look-up, export, share, print, copy)."""
    group_score: float = 60.0
    """Score of a leaver still in a monitored group."""
    suppress_s: int = 86400
    grace_s: int = 3600


class LeaverActivity(RuleDetector):
    id = "leaver_activity"
    version = 1
    summary = "Activity by an account after its holder's leave date, and leavers still in monitored groups."
    Config = LeaverActivityConfig
    config: LeaverActivityConfig

    def _monitored(self, group_id: str | None) -> bool:
        groups = self.config.monitored_groups
        return bool(group_id) and (not groups or group_id in groups)

    def _remember(self, state: dict[str, Any], ev: Event) -> None:
        cfg = self.config
        if ev.kind != "membership" or not self._monitored(ev.group_id):
            return
        action = (ev.action or "").lower()
        if action in cfg.join_actions:
            present = 1
        elif action in cfg.leave_actions:
            present = 0
        else:
            return
        groups: dict[str, list[float]] = state.setdefault("g", {})
        old = groups.get(ev.group_id)  # type: ignore[arg-type]
        if old is None or ev.ts >= old[0]:
            groups[ev.group_id] = [ev.ts, present]  # type: ignore[index]
        if len(groups) > cfg.max_groups:
            del groups[min(groups, key=lambda g: groups[g][0])]

    def needs(self) -> Needs:
        return Needs()  # every event (any activity counts), but nothing to do on a tick without state

    def hits(self, subject: str, ev: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        cfg = self.config
        self._remember(state, ev)
        person = ref.staff.get(subject)
        if person is None or person.left_at is None or ev.ts < person.left_at + cfg.after_leave_s:
            return ()
        action = (ev.action or "").lower()
        if ev.kind == "membership" and action in cfg.leave_actions:
            return ()
        out: list[Hit] = []
        left = person.leave_date
        data = ev.kind in DATA_KINDS
        what = f"{ev.kind}{f' ({ev.action})' if ev.action else ''}"
        if not (ev.kind == "membership" and self._monitored(ev.group_id)):
            out.append(Hit(
                key="activity", event=ev,
                score=cfg.data_activity_score if data else cfg.activity_score,
                title=f"Activity after leaving: {what}",
                explanation=(
                    f"The staff directory gives this account's leave date as {left}; it was used at "
                    f"{when(ev.ts)} ({what}){', touching data' if data else ''}. Accounts should be "
                    f"disabled when their holder leaves."
                ),
                facts={"leave_date": left, "left_at": person.left_at, "kind": ev.kind, "action": ev.action},
            ))
        for group_id, (ts, present) in sorted(state.get("g", {}).items()):
            if present and ts <= ev.ts:
                out.append(self._group_hit(ev, group_id, left, person.left_at))
        return out

    def _group_hit(self, ev: Event, group_id: str, left: str | None, left_at: float) -> Hit:
        return Hit(
            key=f"group:{group_id}", event=ev, score=self.config.group_score,
            title=f"Leaver still in group {group_id}",
            explanation=(
                f"The staff directory gives this account's leave date as {left}, but at {when(ev.ts)} it "
                f"was still a member of the monitored group {group_id}. Leavers should be removed from "
                f"groups used for work."
            ),
            facts={"leave_date": left, "left_at": left_at, "group_id": group_id},
        )

    def tidy(self, subject: str, state: dict[str, Any], ref: Reference, newest: float | None,
             clock: Clock, fold: Folding | None) -> bool:
        groups: dict[str, list[float]] | None = state.get("g")
        if groups and newest is not None:
            horizon = newest - self.config.grace_s
            gone = [g for g, v in groups.items() if not v[1] and v[0] <= horizon]
            for g in gone:
                del groups[g]
        if not groups:
            state.pop("g", None)
            return False
        return True

    def process_relevant(self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock,
                         marks: Sequence[float] | None = None, top: float | None = None
                         ) -> tuple[Any | None, list[Alert]]:
        if not events:
            if top is None and state and state.get("g"):
                return self._sweep(subject, state, clock)
        elif not state:
            person = self.holder.current.staff.get(subject)
            if person is None or person.left_at is None:
                for ev in events:
                    if ev.kind == "membership":
                        break
                else:
                    return None, []  # not a leaver, nothing to remember: nothing to do
        return super().process_relevant(subject, events, state, clock, marks, top)

    def _sweep(self, subject: str, st: dict[str, Any], clock: Clock) -> tuple[Any | None, list[Alert]]:
        """A timer sweep: no events, check remembered memberships against the clock."""
        now = clock()
        person = self.ref.person(subject)
        fold = self.folding(st)
        if person is not None and person.left_at is not None and now >= person.left_at + self.config.after_leave_s:
            for group_id, (ts, present) in sorted(st["g"].items()):
                if present and ts <= now:
                    sweep = Event(id=f"sweep:{group_id}:{int(now)}", ts=now, user_id=subject,
                                  kind="membership", action="member", group_id=group_id)
                    fold.add(self._group_hit(sweep, group_id, person.leave_date, person.left_at),
                             max(now, st.get("n", now)))
        return st, fold.alerts(subject, self.describe)
