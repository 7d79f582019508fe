"""``custodes replay``: the same normalisers, pipeline and detectors, offline, from files.

Records are fed through ``Pipeline.split``/``apply`` in chunks, exactly as the worker feeds Kafka
messages, with detector state in a dict. ``as_of`` fixes "now" (the retention window then counts back
from it) for evaluating or investigating a historical data set.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from detectors.activity_days import DayCounts
from detectors.alert import Alert
from stream.contract.settings import Settings
from stream.sources.summary import Summary

from ..worker.correlation import InMemoryGroups
from ..worker.live import LiveStates
from ..worker.microbatch import DeadLetter
from ..worker.pipeline import Pipeline
from ..worker.step import gather, run_batch

CHUNK_EVENTS = 500


@dataclass
class ReplayResult:
    alerts: dict[str, Alert] = field(default_factory=dict)
    consumed: int = 0
    processed: int = 0
    expired: int = 0
    duplicates: int = 0
    """Processed events that were copies of an event the user's recent events already had (same
    canonical content): counted in ``processed``, not run through the detectors again."""
    dead_lettered: Counter[str] = field(default_factory=Counter)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)
    """Events by source and activity, unclassified per dataset, first places of each dead-letter reason."""
    origins: dict[int, list[tuple[str, int]]] = field(default_factory=dict, repr=False)
    """(file, line) of each event of the messages of the micro-batch being run, by message offset."""
    days: dict[tuple[str, str], DayCounts] = field(default_factory=dict)
    """(person, ISO day) -> that day's activity counts by kind, as the store would hold them."""
    late_activity: int = 0
    """Events more than a day older than their person's newest day: not in ``days``."""

    def keep(self, alert: Alert) -> None:
        old = self.alerts.get(alert.id)
        if old is None or alert.count > old.count:
            self.alerts[alert.id] = alert


def _chunks(settings: Settings, paths: Iterable[Path], fmt: str, mapping: Path | None,
            result: ReplayResult, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    from stream.sources.file_records import canonical_bytes
    from stream.sources.files import read

    lines: list[bytes] = []
    origins: list[tuple[str, int]] = []
    chunk = 0
    for path in paths:
        for record in read(path, fmt=fmt, mapping=mapping, org_domains=settings.internal_domains):
            if progress is not None:
                progress(len(record.raw) + 1)
            if record.error is not None:
                result.consumed += 1
                result.dead_lettered[record.error.reason] += 1
                result.summary.dead(record.error.reason, f"{path}:{record.line}", record.error.field)
                continue
            lines.append(canonical_bytes(record.doc))
            origins.append((str(path), record.line))
            if len(lines) >= CHUNK_EVENTS:
                result.origins[chunk] = origins
                yield b"\n".join(lines)
                lines, origins, chunk = [], [], chunk + 1
    if lines:
        result.origins[chunk] = origins
        yield b"\n".join(lines)


def replay(
    settings: Settings,
    paths: Iterable[Path],
    fmt: str = "auto",
    mapping: Path | None = None,
    as_of: float | None = None,
    progress: Callable[[int], None] | None = None,
    keep_dead_letters: bool = False,
) -> ReplayResult:
    from stream.worker.gctune import tune_for_throughput

    tune_for_throughput()
    clock = (lambda: as_of) if as_of is not None else time.time
    from stream.detection.reference import detectors_for

    holder, detectors = detectors_for(settings)
    pipeline = Pipeline(settings, detectors, clock, reference=holder)
    return run_messages(pipeline, _chunks_for(settings, paths, fmt, mapping, progress),
                        keep_dead_letters=keep_dead_letters)


def _chunks_for(settings: Settings, paths: Iterable[Path], fmt: str, mapping: Path | None,
                progress: Callable[[int], None] | None) -> tuple[ReplayResult, Iterator[bytes]]:
    result = ReplayResult()
    return result, _chunks(settings, paths, fmt, mapping, result, progress)


def run_messages(pipeline: Pipeline, source: tuple[ReplayResult, Iterator[bytes]],
                 keep_dead_letters: bool = False) -> ReplayResult:
    """Feed messages (bytes of newline-delimited events) through the worker's micro-batch step
    (``stream.worker.step``): gathered into micro-batches of up to ``batch_max_events`` events, each
    user's events in a micro-batch run together against their state, kept here in a dict (the most
    recently active decoded too, up to ``live_state_max_bytes``, as the worker keeps them)."""
    result, messages = source
    states: dict[bytes, bytes] = {}
    live = LiveStates(pipeline.settings.live_state_max_bytes)
    groups = InMemoryGroups.for_pipeline(pipeline)
    limit = pipeline.settings.batch_max_events
    gathered: list[_Message] = []
    size = 0
    for offset, value in enumerate(messages):
        gathered.append(_Message(offset, value))
        size += value.count(b"\n") + 1
        if size >= limit:
            _run_batch(pipeline, gathered, states, result, keep_dead_letters, groups, live)
            gathered, size = [], 0
    _run_batch(pipeline, gathered, states, result, keep_dead_letters, groups, live)
    return result


class _Message(NamedTuple):
    """A chunk of a file as the step takes a Kafka message."""

    offset: int
    value: bytes
    topic: str = "replay"
    partition: int = 0
    headers: None = None


_CODES = {"replay": "replay"}


def _run_batch(pipeline: Pipeline, messages: list[_Message], states: dict[bytes, bytes], result: ReplayResult,
               keep_dead_letters: bool, groups: InMemoryGroups | None = None, live: LiveStates | None = None) -> None:
    batch = gather(pipeline, messages, _CODES, None)
    summary = result.summary
    for segments in batch.users.values():
        for seg in segments:
            for ev in seg.events:
                summary.event(ev.doc, ev.kind)
    outcome = run_batch(pipeline, states.get, batch, groups, live)
    for key, _old, new in outcome.new_states:
        if new is None:
            states.pop(key, None)
        else:
            states[key] = new
    for _key, alert in outcome.alerts:
        result.keep(alert)
    if groups is not None:  # Sigma correlations grouped by other than the person (stream/worker/correlation.py)
        for alert in groups.run(outcome.grouped):
            result.keep(alert)
    for _key, day in outcome.days:  # absolute counts: the latest record of a day is its count
        result.days[(day.person, day.day)] = day
    result.late_activity += outcome.counts.late_activity
    counts = outcome.counts
    result.consumed += sum(counts.consumed.values())
    result.expired += counts.expired
    result.processed += sum(counts.processed.values())
    result.duplicates += counts.duplicates
    for letter in outcome.dead_letters:
        result.dead_lettered[letter.reason] += 1
        origin = result.origins.get(letter.offset)
        if origin is not None and 0 < letter.line <= len(origin):
            path, line = origin[letter.line - 1]
            summary.dead(letter.reason, f"{path}:{line}", letter.field)
        if keep_dead_letters:
            result.dead_letters.append(letter)
    result.origins.clear()
    summary.unclassified.clear()
    summary.unclassified.update(pipeline.unclassified)
    summary.unknown_identities.clear()
    summary.unknown_identities.update(pipeline.unknown_identities)
