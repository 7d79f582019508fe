"""small_cell_export: an "anonymised" or aggregated export whose smallest group is below k.

An aggregate of personal data with a cell of fewer than k people can identify them (a telecom-style
"anonymised" location aggregate with cells of 3). The exporting system states the smallest group in
``custodes.aggregate.min_group_size``; an export, share or upload whose value is below ``k`` raises an
alert. The score grows as the smallest group shrinks (a cell of 1 is one person's data).

State: the open alert windows only, one per dataset, at most 64, each expiring
``suppress_s + grace_s`` after it opened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .base import DetectorConfig, Needs
from .event import Event
from .reference import Reference
from .suppression import Hit, RuleDetector


@dataclass(frozen=True)
class SmallCellExportConfig(DetectorConfig):
    k: int = 50
    """Smallest group size an aggregate may have."""
    kinds: tuple[str, ...] = ("export", "share", "web_upload", "message", "removable_media", "print")
    suppress_s: int = 86400
    grace_s: int = 3600


class SmallCellExport(RuleDetector):
    id = "small_cell_export"
    version = 1
    summary = "An aggregated (\"anonymised\") export whose smallest group has fewer than k people."
    Config = SmallCellExportConfig
    config: SmallCellExportConfig

    def needs(self) -> Needs:
        return Needs(kinds=frozenset(self.config.kinds), fields=("min_group_size",))

    def hits(self, subject: str, ev: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        cfg = self.config
        m = ev.min_group_size
        if m is None or ev.kind not in cfg.kinds or m >= cfg.k:
            return ()
        dataset = ev.dataset or "an unnamed dataset"
        score = 50 + 40 * (1 - m / cfg.k) + (10 if m <= 1 else 0)
        return (Hit(
            key=ev.dataset or "-",
            event=ev,
            score=score,
            title=f"Small-cell aggregate exported: smallest group {m} (k = {cfg.k})",
            explanation=(
                f"This user exported an aggregate of {dataset} by {ev.channel or ev.kind} whose smallest "
                f"group holds {m} {'person' if m == 1 else 'people'}, below the minimum of {cfg.k} "
                f"(detectors.small_cell_export.k); groups that small can identify individuals."
            ),
            facts={"min_group_size": m, "k": cfg.k, "dataset": ev.dataset},
        ),)
