"""unsanctioned_messaging: activity in a messaging app that the device's policy set does not sanction
(WhatsApp, Telegram on managed phones), scored up when the content looks like personal data or an
image is posted to a group.

The app is ``custodes.application.id``, the policy set ``custodes.policy_set`` (or
``default_policy_set``); sanctioned apps per policy set come from the reference kind ``app``. A policy
set missing from the register is not judged. The content (``message``) is scanned for the kinds of
personal data in :mod:`detectors.personal_data`; only the KINDS seen reach the alert ("a postcode and
a vehicle registration"), never the text. An image (``custodes.media[].type`` starting ``image``) in
a group (``custodes.group.id``) adds ``group_image_score``.

State: the open alert windows only, one per (policy set, app), at most 64, each expiring
``suppress_s + grace_s`` after it opened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import personal_data
from .base import DetectorConfig, Needs
from .event import Event
from .reference import Reference
from .suppression import Hit, RuleDetector, duration

GROUP_IMAGE = "group_image"


@dataclass(frozen=True)
class UnsanctionedMessagingConfig(DetectorConfig):
    kinds: tuple[str, ...] = ("message", "share")
    default_policy_set: str = ""
    """Policy set for events that carry none ("" = such events are not judged)."""
    base_score: float = 35.0
    """Score of a message in an app the device's policy set does not sanction."""
    personal_data_score: float = 15.0
    """Added per kind of personal data seen in the content."""
    group_image_score: float = 20.0
    """Added when the message carries an image to a group."""
    scan_chars: int = 20000
    """Only the first this many characters of a message are scanned."""
    suppress_s: int = 86400
    grace_s: int = 3600
    alert_min_score: float = 0.0
    """Below this (config/custodes.toml: 40: an unsanctioned app, but no personal data recognised and
    no image in a group) the message is a weak signal for the person's risk (``signal_weight``), not
    a reviewer alert."""
    signal_weight: float = 6.0
    """Risk points (person_risk) of a message scoring under `alert_min_score`, which raises no alert."""


def _has_image(ev: Event) -> bool:
    return any(str(m.get("type", "")).lower().startswith("image") for m in ev.media)


class UnsanctionedMessaging(RuleDetector):
    id = "unsanctioned_messaging"
    version = 1
    summary = "Messaging in an app not sanctioned for the device's policy set, worse with personal data or images."
    Config = UnsanctionedMessagingConfig
    config: UnsanctionedMessagingConfig

    def needs(self) -> Needs:
        return Needs(kinds=frozenset(self.config.kinds), fields=("app_id",))

    def hits(self, subject: str, ev: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        cfg = self.config
        if ev.kind not in cfg.kinds or not ev.app_id:
            return ()
        policy = ev.policy_set or cfg.default_policy_set
        if not policy or ref.sanctioned(policy, ev.app_id) is not False:
            return ()
        kinds = personal_data.kinds_in(ev.content, cfg.scan_chars)
        group_image = bool(ev.group_id) and _has_image(ev)
        score = cfg.base_score + cfg.personal_data_score * len(kinds) + (cfg.group_image_score if group_image else 0)
        if score < cfg.alert_min_score:
            return (Hit(key="unsanctioned_app", event=ev, score=0.0, title="",
                        explanation=f"message in {ev.app_id[:40]}, not sanctioned for policy set {policy[:40]}",
                        signal=cfg.signal_weight),) if cfg.signal_weight > 0 else ()
        return (Hit(
            key=f"{policy}|{ev.app_id}",
            event=ev,
            score=score,
            title="",
            explanation="",
            facts={"app_id": ev.app_id, "policy_set": policy, "group_id": ev.group_id,
                   "personal_data_kinds": list(kinds), "group_image": group_image},
            tags=kinds + ((GROUP_IMAGE,) if group_image else ()),
        ),)

    def describe(self, rec: dict[str, Any], hit: Hit) -> tuple[str, str]:
        app, policy = hit.facts["app_id"], hit.facts["policy_set"]
        kinds = [t for t in rec["t"] if t in personal_data.KINDS]
        where = f" in group {hit.facts['group_id']}" if hit.facts["group_id"] else ""
        seen = []
        if kinds:
            seen.append(f"content that looked like {personal_data.describe(kinds)}")
        if GROUP_IMAGE in rec["t"]:
            seen.append("an image posted to a group")
        explanation = (
            f"This user used {app}{where} on a device under policy set {policy}, where that app is not "
            f"sanctioned (reference kind app)."
            + (f" Within {duration(self.config.suppress_s)} the activity included "
               f"{' and '.join(seen)}." if seen else " No personal data was recognised in the content.")
        )
        extra = " with personal data" if kinds else ""
        extra += " and an image in a group" if GROUP_IMAGE in rec["t"] and kinds else (
            " with an image in a group" if GROUP_IMAGE in rec["t"] else "")
        return f"Unsanctioned messaging app {app}{extra}", explanation
