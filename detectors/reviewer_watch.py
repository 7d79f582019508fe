"""reviewer_watch: watching the watchers (reviewers' own actions in the review app).

Review events are ``custodes.activity = review`` with ``event.action`` (``view``, ``reveal_identity``,
``reveal_content``, ``close``, ``dismiss`` …). Rules:

``reveals``   more than ``max_reveals`` reveal actions (``reveal_actions``) within ``window_s``
``own_team``  acting on an alert about someone in the reviewer's own team: the alert's subject team
              (proposed field ``custodes.subject.team``, else looked up from ``custodes.subject.id``
              in the staff directory) equals the reviewer's team (staff directory)
``self``      acting on an alert about the reviewer themself (``custodes.subject.id``)

State (bounded): reveal counts in ``bucket_s`` buckets over ``window_s + grace_s``, plus at most three
open alert windows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import window
from .base import Clock, DetectorConfig, Needs
from .event import Event
from .fields import doc_str
from .reference import Reference
from .suppression import Folding, Hit, RuleDetector, duration

SUBJECT_ID_FIELD = "custodes.subject.id"
SUBJECT_TEAM_FIELD = "custodes.subject.team"


@dataclass(frozen=True)
class ReviewerWatchConfig(DetectorConfig):
    reveal_actions: tuple[str, ...] = ("reveal_identity", "reveal_content")
    """Review actions that reveal an identity or content."""
    max_reveals: int = 20
    """Reveals tolerated within the window; one more raises an alert."""
    window_s: int = 86400
    bucket_s: int = 3600
    watched_actions: tuple[str, ...] = (
        "view", "reveal_identity", "reveal_content", "assign", "close", "dismiss", "escalate")
    """Actions that count for the own-team and self rules."""
    own_team_score: float = 60.0
    """Score of a reviewer handling an alert about their own team."""
    self_score: float = 85.0
    """Score of a reviewer handling an alert about themselves."""
    grace_s: int = 3600
    suppress_s: int = 86400


class ReviewerWatch(RuleDetector):
    id = "reviewer_watch"
    version = 1
    summary = "Reviewers revealing many identities, or handling alerts about their own team or themselves."
    Config = ReviewerWatchConfig
    config: ReviewerWatchConfig

    def needs(self) -> Needs:
        return Needs(kinds=frozenset({"review"}))

    def hits(self, subject: str, ev: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        cfg = self.config
        if ev.kind != "review":
            return ()
        out: list[Hit] = []
        action = (ev.action or "").lower()
        if action in cfg.reveal_actions and ev.ts > newest - cfg.window_s - cfg.grace_s:
            buckets = state.setdefault("c", [])
            window.add(buckets, ev.ts, cfg.bucket_s)
            n = int(window.peak(buckets, ev.ts, cfg.window_s, cfg.bucket_s))
            if n > cfg.max_reveals:
                out.append(Hit(
                    key="reveals", event=ev, score=min(95.0, 45 + 25 * n / max(cfg.max_reveals, 1)),
                    title=f"Reviewer revealed {n} identities or contents in {duration(cfg.window_s)}",
                    explanation=(
                        f"This reviewer made {n} reveal actions ({', '.join(cfg.reveal_actions)}) within "
                        f"{duration(cfg.window_s)} of event time; more than {cfg.max_reveals} raises an "
                        f"alert (detectors.reviewer_watch.max_reveals)."
                    ),
                    facts={"reveals": n, "max_reveals": cfg.max_reveals, "window_s": cfg.window_s},
                ))
        if action not in cfg.watched_actions:
            return out
        about = doc_str(ev, SUBJECT_ID_FIELD)
        if about is not None and about == subject:
            out.append(Hit(
                key="self", event=ev, score=cfg.self_score,
                title="Reviewer handled an alert about themself",
                explanation=f"This reviewer performed '{action}' on an alert whose subject is their own account.",
                facts={"action": action},
            ))
            return out
        me = ref.person(subject)
        team = doc_str(ev, SUBJECT_TEAM_FIELD)
        if team is None and about is not None and (other := ref.person(about)) is not None:
            team = other.team
        if me is not None and me.team and team == me.team:
            out.append(Hit(
                key="own_team", event=ev, score=cfg.own_team_score,
                title=f"Reviewer handled an alert about their own team ({team})",
                explanation=(
                    f"This reviewer performed '{action}' on an alert about a member of their own team "
                    f"({team}, staff directory); such alerts should go to a reviewer outside the team."
                ),
                facts={"action": action, "team": team},
            ))
        return out

    def tidy(self, subject: str, state: dict[str, Any], ref: Reference, newest: float | None,
             clock: Clock, fold: Folding | None) -> bool:
        cfg = self.config
        buckets = state.get("c")
        if buckets and newest is not None:
            horizon = newest - cfg.window_s - cfg.grace_s
            if buckets[0][0] + cfg.bucket_s <= horizon:  # sorted: something to drop
                buckets = state["c"] = window.prune(buckets, horizon, cfg.bucket_s)
        if not buckets:
            state.pop("c", None)
            return False
        return True
