"""Peer-group baselines for unusual_volume, computed from event files.

A peer group is ``team/role`` from the staff directory. For each group, ``detectors.peers.PeerAggregator``
folds the group's hourly activity per member into a mean and spread per hour of the week. Peer
baselines move slowly, so they are built from the event archive (e.g. nightly) rather than kept in
every worker: ``custodes reference peers FILE… --out peers.jsonl`` writes reference records of kind
``peer``. Publish them with ``custodes reference push peers.jsonl`` (or put the file in the reference
directory); running workers then compare a user's hour with their peers' as well as their own history.
Only hashed user ids and per-group numbers are kept: no events, no names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from detectors.peers import PeerAggregator
from stream.contract.schema import Invalid, validate
from stream.contract.settings import Settings
from stream.detection.reference import load_dir


def build_peer_baselines(settings: Settings, paths: Iterable[Path], fmt: str = "auto",
                         mapping: Path | None = None) -> list[dict[str, Any]]:
    """Peer records (``{"group", "mean", "std", "members"}``) from event files in time order."""
    from stream.sources.files import read

    reference = load_dir(settings.reference_dir)
    members = Counter(p.peer_group for p in reference.staff.values() if p.peer_group)
    knobs = settings.detectors.get("unusual_volume", {})
    aggregator = PeerAggregator(alpha=float(knobs.get("alpha", 0.05)), grace_s=float(knobs.get("grace_s", 3600)),
                                timezone=str(knobs.get("timezone", "Europe/London")))
    states: dict[str, dict[str, Any] | None] = {}
    records: dict[str, dict[str, Any]] = {}
    limits = settings.event_limits
    for path in paths:
        for record in read(path, fmt=fmt, mapping=mapping):
            if record.error is not None or record.doc is None:
                continue
            try:
                ev = validate(record.doc, record.raw, limits)
            except Invalid:
                continue
            person = reference.staff.get(ev.user_id)
            group = person.peer_group if person else None
            if group is None:
                continue
            states[group], out = aggregator.process(group, [ev], members[group], states.get(group))
            if out is not None:
                records[group] = out
    return [records[g] for g in sorted(records)]
