"""The crash-safe order of a micro-batch's effects (stream/worker/delivery.py), with a fake producer:
records (alerts, dead letters, re-keyed events, activity days, grouped records) acknowledged, then states
written, then the messages acknowledged; a failure at any step, a failed record batch included, stops
before the next."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from detectors.activity_days import DayCounts
from detectors.alert import Alert
from stream.telemetry.metrics import PipelineMetrics
from stream.worker.delivery import deliver, publish, too_large
from stream.worker.microbatch import DeadLetter
from stream.worker.step import BatchOutcome, Counts, Record, StateWrite

from ..events import T0


def _alert(user: str, n: int = 1) -> Alert:
    return Alert(id=f"id-{user}-{n}", detector="bulk_export", detector_version=1, severity="high", score=1.0,
                 subject=user, title="t", explanation="e", ts=T0, first_seen=T0, last_seen=T0, count=n)


class FakeOutput:
    """Records every effect in order; ``fail_send`` (a role) or ``fail_states`` make that step fail,
    ``refuse`` a role the broker refuses for its size; ``when``: at the call ("send") or in the ack.
    A record batch fails as a whole if any of its records' role fails (as a real batch does)."""

    def __init__(self, fail_send: str | None = None, fail_states: bool = False, refuse: str | None = None,
                 when: str = "ack") -> None:
        self.log: list[tuple[str, Any]] = []
        self.batches: list[list[str]] = []
        """The roles of each send_batch call's records."""
        self.fail_send, self.fail_states, self.refuse, self.when = fail_send, fail_states, refuse, when

    async def send(self, record: Record) -> Any:
        error: BaseException | None = None
        if record.role == self.fail_send:
            error = KafkaTimeoutError()
        elif record.role == self.refuse:
            error = MessageSizeTooLargeError()
        if error is not None and self.when == "send":
            raise error
        future = asyncio.get_running_loop().create_future()
        if error is not None:
            future.set_exception(error)
        else:
            self.log.append(("sent", (record.role, record.key)))
            future.set_result(None)
        return future

    async def send_batch(self, records: Sequence[Record]) -> Any:
        self.batches.append([record.role for record in records])
        error: BaseException | None = None
        if any(record.role == self.fail_send for record in records):
            error = KafkaTimeoutError()
        elif any(record.role == self.refuse for record in records):
            error = MessageSizeTooLargeError()
        if error is not None and self.when == "send":
            raise error
        future = asyncio.get_running_loop().create_future()
        if error is not None:
            future.set_exception(error)
        else:
            self.log.extend(("sent", (record.role, record.key)) for record in records)
            future.set_result(None)
        return future

    async def write_states(self, writes: Sequence[StateWrite]) -> None:
        if self.fail_states:
            raise KafkaTimeoutError()
        self.log.append(("states", [key for key, _, _ in writes]))


def _outcome() -> BatchOutcome:
    return BatchOutcome(
        alerts=[(b"alice", _alert("alice"))],
        new_states=[(b"alice", None, b"{}"), (b"bob", b"{}", None)],
        dead_letters=[DeadLetter(b"{bad", "invalid_json", "x", "events", 0, 1, 1)],
        reroute=[("carol", b"{}", b"1:2:1", "events")],
        counts=Counts(consumed={"events": 4}),
        grouped=[("host-1", {"n": 1})],
        days=[(b"alice", DayCounts(person="alice", day="2026-12-03", counts={"view": 3}, last_seen=T0))],
    )


def _deliver(output: FakeOutput, outcome: BatchOutcome | None = None) -> list[str]:
    acked: list[str] = []

    async def ack() -> None:
        output.log.append(("ack", None))
        acked.append("ack")

    async def run() -> list[DeadLetter]:
        return await deliver(outcome or _outcome(), output, ack, dead_letter_max_bytes=100)

    return asyncio.run(run())


def test_records_then_states_then_the_messages_are_acknowledged():
    output = FakeOutput()
    refused = _deliver(output)
    assert refused == []
    assert output.log == [
        ("sent", ("rerouted", b"carol")), ("sent", ("alerts", b"alice")), ("sent", ("dead_letter", None)),
        ("sent", ("sigma_groups", b"host-1")), ("sent", ("activity_days", b"alice")),
        ("states", [b"alice", b"bob"]), ("ack", None),
    ]
    # the re-keyed event alone (it may be refused for its size); everything else in one call
    assert output.batches == [["alerts", "dead_letter", "sigma_groups", "activity_days"]]


@pytest.mark.parametrize("when", ["send", "ack"])
@pytest.mark.parametrize("role", ["alerts", "dead_letter", "rerouted", "sigma_groups", "activity_days"])
def test_a_send_that_fails_means_no_state_written_and_no_ack(role, when):
    output = FakeOutput(fail_send=role, when=when)
    with pytest.raises(KafkaTimeoutError):
        _deliver(output)
    assert not any(step in ("states", "ack") for step, _ in output.log)


@pytest.mark.parametrize("role", ["sigma_groups", "activity_days", "dead_letter"])
def test_a_record_batch_refused_for_its_size_is_an_error_not_a_silent_loss(role):
    # only a re-keyed event is dead-lettered in place when refused; a refused batch stops the micro-batch
    output = FakeOutput(refuse=role)
    with pytest.raises(MessageSizeTooLargeError):
        _deliver(output)
    assert not any(step in ("states", "ack") for step, _ in output.log)


def test_a_state_write_that_fails_means_no_ack():
    output = FakeOutput(fail_states=True)
    with pytest.raises(KafkaTimeoutError):
        _deliver(output)
    assert [step for step, _ in output.log] == ["sent"] * 5


@pytest.mark.parametrize("when", ["send", "ack"])
def test_a_rekeyed_event_refused_for_its_size_is_dead_lettered_before_the_states(when):
    output = FakeOutput(refuse="rerouted", when=when)
    refused = _deliver(output)
    assert [(d.reason, d.partition, d.offset, d.line) for d in refused] == [("unroutable", 1, 2, 1)]
    steps = [entry for entry in output.log if entry[0] != "sent" or entry[1][0] == "dead_letter"]
    assert steps == [("sent", ("dead_letter", None)), ("sent", ("dead_letter", None)),
                     ("states", [b"alice", b"bob"]), ("ack", None)]


def test_an_alert_refused_for_its_size_is_an_error_not_a_silent_loss():
    output = FakeOutput(refuse="alerts")
    with pytest.raises(MessageSizeTooLargeError):
        _deliver(output)
    assert not any(step in ("states", "ack") for step, _ in output.log)


def test_an_outcome_with_nothing_to_send_writes_states_then_acks():
    output = FakeOutput()
    _deliver(output, BatchOutcome(new_states=[(b"a", None, b"{}")]))
    assert output.log == [("states", [b"a"]), ("ack", None)]


def test_too_large_follows_the_cause_chain():
    wrapped = RuntimeError("send failed")
    wrapped.__cause__ = MessageSizeTooLargeError()
    assert too_large(wrapped) and too_large(MessageSizeTooLargeError())
    assert not too_large(KafkaTimeoutError()) and not too_large(None)


def test_publish_counts_what_was_delivered():
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    outcome = _outcome()
    outcome.counts.processed.update({"export": 2})
    outcome.counts.expired = 1
    unroutable = [DeadLetter(b"{}", "unroutable", "x", "events", 1, 2, 1)]
    publish(PipelineMetrics(registry), outcome, unroutable, T0)

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    assert value("custodes_events_consumed_total", topic="events") == 4
    assert value("custodes_events_processed_total", kind="export") == 2
    assert value("custodes_events_expired_total") == 1
    assert value("custodes_events_rerouted_total") == 0  # the one re-keyed event was refused
    assert value("custodes_events_dead_lettered_total", reason="invalid_json") == 1
    assert value("custodes_events_dead_lettered_total", reason="unroutable") == 1
    assert value("custodes_alerts_raised_total", detector="bulk_export", severity="high") == 1
