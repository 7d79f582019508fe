"""Applying a micro-batch's outcome, in the order that makes a crash at any point lose nothing.

1. every record the outcome sends (alerts, dead letters, re-keyed events, ...) is sent, and all are
   acknowledged by the broker (as record batches per topic and partition, :meth:`Output.send_batch`,
   but for the re-keyed events, each sent alone so that one refused for its size is dead-lettered);
2. then the changed states are written (to the table's changelog) and acknowledged;
3. only then are the messages acknowledged (``ack``), so no offset is committed past a message
   whose alerts or state might be lost.

A failure at any step raises before the next: an alert the broker did not take means no state written
and no message acknowledged (the micro-batch runs again after a restart against the old states and
raises the same alerts: their ids are deterministic). Behind a narrow interface (:class:`Output`), so
this order is tested without a broker (tests/stream/worker/test_delivery.py); the Kafka side is
:class:`stream.worker.kafka_output.KafkaOutput`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiokafka.errors import MessageSizeTooLargeError

from stream.telemetry.metrics import PipelineMetrics

from .microbatch import DeadLetter
from .step import BatchOutcome, Record, StateWrite


class Output(Protocol):
    async def send(self, record: Record) -> Awaitable[Any]:
        """Start sending ``record``; the result resolves when the broker acknowledges it."""

    async def send_batch(self, records: Sequence[Record]) -> Awaitable[Any]:
        """Start sending ``records`` as record batches, each to the partition :meth:`send` would give
        it, in order within a partition; the result resolves when the broker has acknowledged all of
        them and raises if it refused or failed any."""

    async def write_states(self, writes: Sequence[StateWrite]) -> None:
        """Write the states and return once they are durable (acknowledged on the changelog)."""


def too_large(exc: BaseException | None) -> bool:
    """Whether a send failed because the producer or the broker refuses the record's size (permanent,
    unlike an outage, which the producer retries)."""
    while exc is not None:
        if isinstance(exc, MessageSizeTooLargeError):
            return True
        exc = exc.__cause__
    return False


async def deliver(outcome: BatchOutcome, output: Output, ack: Callable[[], Awaitable[None]] | None = None, *,
                  dead_letter_max_bytes: int) -> list[DeadLetter]:
    """Apply ``outcome`` through ``output`` in the crash-safe order (see the module), then ``ack()``.
    Returns the dead letters sent in place of records the broker refused for their size (a re-keyed
    event larger than the rerouted topic takes would otherwise fail the worker on every restart)."""
    pending: list[tuple[Record | None, Awaitable[Any]]] = []
    refused: list[DeadLetter] = []
    batched: list[Record] = []
    for record in outcome.records(dead_letter_max_bytes):
        if record.refused is None:
            batched.append(record)
            continue
        # a record the broker may refuse for its size (a re-keyed event) goes alone, so that only it
        # is dead-lettered if refused
        try:
            sent = await output.send(record)
        except Exception as exc:
            if not too_large(exc):
                raise
            refused.append(record.refused)
            continue
        pending.append((record, sent))
    if batched:  # alerts, dead letters, activity days, grouped records: a failure is an error
        pending.append((None, await output.send_batch(batched)))
    if pending:
        results = await asyncio.gather(*(sent for _, sent in pending), return_exceptions=True)
        for (record, _), result in zip(pending, results, strict=True):
            if isinstance(result, BaseException):
                if record is None or record.refused is None or not too_large(result):
                    raise result
                refused.append(record.refused)
    if refused:
        letters = []
        for letter in refused:
            value, headers = letter.record(dead_letter_max_bytes)
            letters.append(Record("dead_letter", None, value, headers))
        await (await output.send_batch(letters))
    await output.write_states(outcome.new_states)
    if ack is not None:
        await ack()
    return refused


def publish(metrics: PipelineMetrics, outcome: BatchOutcome, refused: Sequence[DeadLetter], now: float) -> None:
    """Count a delivered outcome in the worker's metrics."""
    counts = outcome.counts
    for key_alert in outcome.alerts:
        alert = key_alert[1]
        metrics.alerts.labels(alert.detector, alert.severity).inc()
    for letters in (outcome.dead_letters, refused):
        for letter in letters:
            metrics.dead_lettered.labels(letter.reason).inc()
    for topic, n in counts.consumed.items():
        metrics.consumed.labels(topic).inc(n)
    for kind, n in counts.processed.items():
        metrics.processed.labels(kind).inc(n)
    if counts.expired:
        metrics.expired.inc(counts.expired)
    if outcome.reroute:
        metrics.rerouted.inc(len(outcome.reroute) - len(refused))
    if counts.redelivered:
        metrics.duplicates.inc(counts.redelivered)
    if counts.duplicates:
        metrics.duplicate_events.inc(counts.duplicates)
    if counts.state_expired:
        metrics.state_expired.inc(counts.state_expired)
    if counts.late_activity:
        metrics.activity_late.inc(counts.late_activity)
    if counts.newest_ts is not None:
        metrics.event_lag.observe(max(0.0, now - counts.newest_ts))
