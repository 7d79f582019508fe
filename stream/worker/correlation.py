"""Sigma correlations grouped by something other than the person, at run time: the repartition topic,
the group stage's table and agent (worker), and the same in memory (``custodes replay``).

The person pass (the detectors, keyed by person) emits a record for each event matching a rule a
grouped correlation uses (:mod:`detectors.sigma.grouped`). :meth:`GroupedCorrelations.take` collects
them after each person's segments are applied, with each record's origin position (the person-pass
partition, the input and the event's place in it); the worker sends them to ``[topics] sigma_groups``
keyed by group (correlation id and a digest of the group-by values), before it writes the person's
state, so a person state that survived a crash implies its records were delivered. The group agent
counts each record in its group's state (a Faust table with a changelog, like the detector state),
sends the alerts, writes the state and waits for the changelog, then acknowledges the record: a crash
at any point recounts nothing twice (the state keeps the last origin position applied per origin) and
loses nothing (an unacknowledged record is redelivered).

In the worker, ``create_app`` calls :func:`attach` (None when no Sigma unit runs) and routes the
records' role ``sigma_groups`` to its topic; ``run_batch(..., groups.hook)`` takes the records as each
person's segments are applied and puts them in ``BatchOutcome.grouped``, which the micro-batch's
delivery sends with its alerts, before any person state is written (stream/worker/step.py,
delivery.py). The group agent sends its own alerts and writes group states through the same
:class:`~stream.worker.kafka_output.KafkaOutput`. Replay (stream/offline/replay.py) runs
``InMemoryGroups.run(outcome.grouped)`` after each micro-batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

from detectors.alert import Alert
from detectors.sigma import SigmaRules
from detectors.sigma.grouped import GroupConfig, GroupStage, group_key, stale
from stream.worker.kafka_output import KafkaOutput, state_table
from stream.worker.pipeline import Pipeline, Segment, owned
from stream.worker.step import Record

log = logging.getLogger("custodes.sigma.groups")


def sigma_unit(pipeline: Pipeline) -> SigmaRules | None:
    return next((d for d in pipeline.engine.detectors if isinstance(d, SigmaRules)), None)


class GroupedCorrelations:
    """Takes the person pass's records and runs the group stage on stored (bytes) states."""

    def __init__(self, unit: SigmaRules) -> None:
        self.unit = unit
        self.stage = GroupStage(unit.rules, GroupConfig(suppress_s=unit.config.suppress_s,
                                                         grace_s=unit.config.grace_s))
        self.out: list[tuple[list[Any], str, dict[str, Any]]] = []
        """(origin position, group key, record) of the records taken and not yet sent or run."""

    @classmethod
    def for_pipeline(cls, pipeline: Pipeline) -> GroupedCorrelations | None:
        unit = sigma_unit(pipeline)
        return cls(unit) if unit is not None else None

    def take(self, segments: Sequence[Segment]) -> int:
        """Collect the records emitted while ``segments`` (one person's, just applied) ran; returns how
        many. Each gets its origin position: ``"<person-pass partition>:<source>:<partition>"`` and the
        event's (offset, line, person, index among that person's events of the message) there, which
        increases along the origin. A micro-batch's records are sent sorted by it (:meth:`ordered`):
        the messages' order, and a fixed order within a message, so how the messages are cut into
        micro-batches does not change the order the group stage counts them in."""
        records = self.unit.take_records()
        if not records:
            return 0
        where: dict[int, list[Any]] = {}
        for seg in segments:
            origin = f"{seg.message[1]}:{seg.source}:{seg.partition}"
            for j, ev in enumerate(seg.events):
                where[id(ev)] = [origin, seg.offset, seg.line, ev.user_id, j]
        for ev, rec in records:
            at = where.get(id(ev))
            if at is not None:
                rec["a"] = at
            self.out.append((at or [""], group_key(rec), rec))
        return len(records)

    def ordered(self) -> list[tuple[str, dict[str, Any]]]:
        """The records taken, in origin order, and forget them."""
        out, self.out = self.out, []
        out.sort(key=lambda r: r[0])
        return [(key, rec) for _, key, rec in out]

    def apply(self, values: Sequence[bytes], stored: bytes | None) -> tuple[bytes | None, list[Alert], int]:
        """One group's records (in arrival order) against its stored state: (new state, alerts,
        records that could not be read). A record is this program's own output; one that does not
        decode is counted and skipped, never allowed to stop the others."""
        recs = []
        bad = 0
        for v in values:
            try:
                rec = orjson.loads(v)
                if not isinstance(rec, dict) or "c" not in rec or "t" not in rec or "u" not in rec or "g" not in rec:
                    raise ValueError("not a record")
            except ValueError:
                bad += 1
                continue
            recs.append((rec, rec.pop("a", None)))
        state = orjson.loads(stored) if stored else None
        new, alerts = self.stage.apply(recs, state)
        return (owned(orjson.dumps(new)) if new is not None else None), alerts, bad


class InMemoryGroups(GroupedCorrelations):
    """``custodes replay``: the group stage's states in a dict (as decoded JSON: no serialising, the
    state is JSON all the same), run after each micro-batch."""

    SWEEP_RUNS = 64
    """Stale groups are looked for every this many micro-batches."""

    def __init__(self, unit: SigmaRules) -> None:
        super().__init__(unit)
        self.states: dict[str, dict[str, Any]] = {}
        self.watermark = float("-inf")
        self._runs = 0

    def run(self, records: Sequence[tuple[str, dict[str, Any]]] | None = None) -> list[Alert]:
        """The group stage on ``records`` (a micro-batch's :attr:`BatchOutcome.grouped`), or on what
        was taken and not yet run."""
        by_key: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        for key, rec in (self.ordered() if records is None else records):
            by_key.setdefault(key, []).append((rec, rec.pop("a", None)))
        alerts: list[Alert] = []
        for key, recs in by_key.items():
            new, got = self.stage.apply(recs, self.states.get(key))
            if new is None:
                self.states.pop(key, None)
            else:
                self.states[key] = new
                if new["n"] > self.watermark:
                    self.watermark = new["n"]
            alerts.extend(got)
        self._runs += 1
        if self._runs % self.SWEEP_RUNS == 0:
            for key in [k for k, v in self.states.items() if stale(v, self.watermark)]:
                del self.states[key]
        return alerts


@dataclass
class WorkerGroups:
    """The worker's side: the person pass takes records with :attr:`hook` (``run_batch(..., groups)``),
    the micro-batch's delivery sends them to :attr:`topic` with its other records (before any state is
    written), and :attr:`sent` counts them once delivered."""

    hook: GroupedCorrelations
    topic: Any
    sent: Any


def attach(app: Any, settings: Any, pipeline: Pipeline, metrics: Any, registry: Any, alerts_out: Any,
           exactly_once: bool) -> WorkerGroups | None:
    """Declare the repartition topic, the group-state table and the agent counting groups in ``app``;
    returns the hook the routing agent feeds (None without a Sigma unit)."""
    unit = sigma_unit(pipeline)
    if unit is None:
        return None
    from prometheus_client import Counter

    t = settings.topics
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw",
                           "partitions": settings.partitions, "retention": timedelta(seconds=settings.retention_s)}
    topic = app.topic(t.sigma_groups, **raw)
    table = state_table(app, settings, "sigma-group-state",
                        "Sigma correlation state per group (counts, sketches; never event lists).")
    output = KafkaOutput(app, {"alerts": alerts_out}, table, settings.partitions, exactly_once)
    records_total = Counter("custodes_sigma_group_records_total", "Records of grouped Sigma correlations, by "
                            "outcome (sent by the person pass; counted, redelivered (applied before a restart), "
                            "unreadable or failed in the group stage).",
                            ["outcome"], registry=registry)
    for outcome in ("sent", "counted", "redelivered", "unreadable", "failed"):
        records_total.labels(outcome)

    hook = GroupedCorrelations(unit)
    watermark = [float("-inf")]
    lock = asyncio.Lock()  # the sweep and the agent never interleave on one group's state

    @app.agent(topic, name="custodes-sigma-groups")
    async def count_groups(stream: Any) -> None:
        """One record at a time: count it, send its alerts and wait for them, write the group's state
        and wait for the changelog, then acknowledge the record."""
        manual = stream.noack()
        async for event in manual.events():
            async with lock:
                await handle(event)
            await manual.ack(event)

    async def handle(event: Any) -> None:
        message = event.message
        key = message.key or b""
        stored = table.data.get(key)
        before = hook.stage.redelivered
        try:
            new, alerts, bad = hook.apply([message.value or b""], stored)
        except Exception:  # a bug must not stop the other groups: counted, logged without the record
            records_total.labels("failed").inc()
            log.exception("sigma group record failed (topic %s partition %d offset %d): skipped",
                          message.topic, message.partition, message.offset)
            return
        if bad:
            records_total.labels("unreadable").inc(bad)
            log.error("sigma group record unreadable (topic %s partition %d offset %d): skipped",
                      message.topic, message.partition, message.offset)
        elif hook.stage.redelivered > before:
            records_total.labels("redelivered").inc()
        else:
            records_total.labels("counted").inc()
        pending = []
        for alert in alerts:
            pending.append(await output.send(Record("alerts", alert.subject.encode(), orjson.dumps(alert.to_dict()),
                                                    timestamp=alert.ts)))
            metrics.alerts.labels(alert.detector, alert.severity).inc()
        if pending:
            await asyncio.gather(*pending)
        if new is not stored:
            await output.write_states([(key, stored, new)])
        if new is not None:
            watermark[0] = max(watermark[0], orjson.loads(new).get("n", watermark[0]))

    @app.timer(interval=float(settings.state_sweep_interval_s))
    async def sweep_groups() -> None:
        """Delete group states no record can still count in (their group saw nothing for longer than
        they keep), and any older than the retention window."""
        oldest = pipeline.clock() - settings.retention_s
        async with lock:
            for key, value in list(table.data.items()):
                st = orjson.loads(value)
                if stale(st, watermark[0]) or st.get("n", 0) < oldest:
                    await output.write_states([(key, value, None)])

    worker = WorkerGroups(hook, topic, records_total.labels("sent"))
    app.custodes_sigma_groups = worker  # type: ignore[attr-defined]
    return worker
