"""The same events through the product path (``Pipeline`` + ``run_messages``, only bulk_export and
unusual_volume enabled) and through the columnar kernels; both give their alerts as :class:`Found`."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detectors import registry
from detectors.bulk_export import BulkExportConfig
from detectors.unusual_volume import UnusualVolumeConfig
from stream.contract.settings import Settings, load

from .columns import decode
from .kernels import BulkExportKernel, Found, NotCovered, UnusualVolumeKernel, Users

DETECTORS = ("bulk_export", "unusual_volume")
TIGHT: dict[str, dict[str, Any]] = {
    "bulk_export": {"max_records": {"low": 9, "medium": 40, "high": 300, "special": 10},
                    "max_distinct_records": {"low": 30, "medium": 5, "high": 4, "special": 5}},
    "unusual_volume": {"warmup_days": 0, "z_threshold": 1.5, "min_events": 8, "off_hours_min_events": 6,
                       "off_hours_max_mean": 2.0},
}
"""Thresholds low enough for the generated workload to raise alerts of every kind (the shipped ones
raise none on a day of 2,000 users: nothing to compare)."""


def settings_for(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Settings:
    """The repository's settings with every detector but the two disabled (and ``overrides`` applied)."""
    settings = load()
    knobs: dict[str, dict[str, Any]] = {k: dict(v) for k, v in settings.detectors.items()}
    for cls in registry.CATALOG:
        knobs.setdefault(cls.id, {})["enabled"] = cls.id in DETECTORS
    for det, values in (overrides or {}).items():
        knobs[det].update(values)
    return settings.model_copy(update={"detectors": knobs})


def product(messages: Sequence[bytes], now: float, settings: Settings) -> tuple[dict[str, Found], float, int]:
    """(alerts, CPU seconds, events processed) of the product path."""
    from stream.offline.replay import ReplayResult, run_messages
    from stream.worker.pipeline import Pipeline

    detectors = registry.build(settings.detectors)
    assert sorted(d.id for d in detectors) == sorted(DETECTORS)
    pipeline = Pipeline(settings, detectors, lambda: now)
    cpu = time.process_time()
    result = run_messages(pipeline, (ReplayResult(), iter(messages)))
    cpu = time.process_time() - cpu
    out = {}
    for a in result.alerts.values():
        facts = tuple(sorted((k, a.facts[k]) for k in ("records", "distinct_records") if k in a.facts))
        out[a.id] = Found(a.id, a.detector, a.subject, a.count, a.first_seen, a.last_seen, a.ts, a.score,
                          a.severity, facts)
    return out, cpu, result.processed


def columnar(messages: Sequence[bytes], now: float, settings: Settings, stages: dict[str, float] | None = None
             ) -> tuple[dict[str, Found], float, int]:
    """(alerts, CPU seconds including the decode into columns, events) of the kernels, fed micro-batches
    cut as ``run_messages`` cuts them (``batch_max_events``). ``stages``: CPU seconds per stage are
    added to it (decode, then each kernel)."""
    knobs = settings.detectors
    be = BulkExportConfig(**{k: v for k, v in knobs["bulk_export"].items() if k != "enabled"})
    uv = UnusualVolumeConfig(**{k: v for k, v in knobs["unusual_volume"].items() if k != "enabled"})
    cpu = time.process_time()
    users = Users()
    kernels = (BulkExportKernel(be, users), UnusualVolumeKernel(uv, users))
    oldest, latest = now - settings.retention_s, now + settings.max_future_s
    limit = settings.batch_max_events
    events = 0
    pending: list[bytes] = []
    size = 0

    def run(parts: list[bytes]) -> int:
        if not parts:
            return 0
        t = time.process_time()
        b = decode(b"\n".join(parts))
        if b.n and (np.min(b.ts) < oldest or np.max(b.ts) > latest):
            raise NotCovered("events outside the retention window or in the future")
        ucode = users.encode(b.user)
        if stages is not None:
            stages["decode"] = stages.get("decode", 0.0) + time.process_time() - t
        for k in kernels:
            t = time.process_time()
            k.run(b, ucode)
            if stages is not None:
                stages[k.detector] = stages.get(k.detector, 0.0) + time.process_time() - t
        return b.n

    for m in messages:
        pending.append(m)
        size += m.count(b"\n") + 1
        if size >= limit:
            events += run(pending)
            pending, size = [], 0
    events += run(pending)
    out = {**kernels[0].alerts(), **kernels[1].alerts()}
    return out, time.process_time() - cpu, events


def differences(a: dict[str, Found], b: dict[str, Found], limit: int = 5) -> list[str]:
    """Plain-words differences between two alert sets (empty: identical)."""
    out = []
    for i in sorted(set(a) | set(b)):
        if a.get(i) != b.get(i):
            out.append(f"{i}: product {a.get(i)} != columnar {b.get(i)}")
            if len(out) >= limit:
                break
    return out
