import dataclasses
import time

from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError

from stream.contract.settings import load
from stream.store.sink import Sink
from tests.stream.store.test_store import make_alert


class FlakyStore:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.rows: dict[str, int] = {}

    def upsert_alerts(self, batch):
        if self.failures:
            self.failures -= 1
            raise OperationalError("INSERT", {}, Exception("connection refused"))
        for a in batch:
            self.rows[a.id] = max(self.rows.get(a.id, 0), a.count)
        return len(batch)

    def dispose(self):
        pass


def test_database_outage_is_retried_with_backoff_and_shown_in_metrics():
    registry = CollectorRegistry()
    store = FlakyStore(failures=4)
    sink = Sink(load(env={}), registry=registry, store=store)
    sleeps: list[float] = []
    a = make_alert()
    sink.write([a, dataclasses.replace(a, count=2)], sleep=sleeps.append)
    assert store.rows == {a.id: 2}
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    assert registry.get_sample_value("custodes_sink_database_errors_total") == 4
    assert registry.get_sample_value("custodes_sink_database_up") == 1
    assert registry.get_sample_value(
        "custodes_alerts_stored_total", {"detector": "bulk_export", "severity": "high"}) == 2


# -- a permanent error in one alert never stops the others ------------------------------------------

import random  # noqa: E402

import orjson  # noqa: E402
import pytest  # noqa: E402
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError  # noqa: E402

from stream.store.alerts import AlertStore  # noqa: E402
from stream.store.sink import SINK_REASONS, Origin, permanent_reason  # noqa: E402


def poisoned_alerts(dialect: str) -> list[tuple[object, set[str]]]:
    """Alerts the store refuses on ``dialect``, each with the reasons it may be dead-lettered with."""
    out = [
        (dataclasses.replace(make_alert(101), ts=1e20), {"bad_value"}),  # no datetime holds it
        (dataclasses.replace(make_alert(102), count=2**63), {"bad_value", "data_error"}),  # out of INTEGER
    ]
    if dialect == "postgresql":
        # 1,024 characters pass validation, but 4 KiB of UTF-8 that does not compress is too large
        # for the subject's btree index: PostgreSQL reports an OperationalError (SQLSTATE 54000)
        rng = random.Random(7)
        subject = "".join(chr(rng.randrange(0x1F300, 0x1F6FF)) for _ in range(1024))
        out.append((make_alert(103, subject=subject), {"data_error"}))
    return out


def test_a_poisoned_alert_is_dead_lettered_and_the_rest_of_its_batch_stored(database_url):
    store = AlertStore(database_url)
    try:
        registry = CollectorRegistry()
        sink = Sink(load(env={}), registry=registry, store=store)
        poisoned = poisoned_alerts(store.engine.dialect.name)
        good = [make_alert(n) for n in range(1, 6)]
        # NUL in free text is stored (as U+2400), not refused
        good.append(dataclasses.replace(make_alert(6), title="a\x00b", evidence=({"content": "x\x00y"},)))
        batch = good[:3] + [p for p, _ in poisoned] + good[3:]
        origins = [Origin(orjson.dumps(a.to_dict()), "custodes-alerts", 0, i) for i, a in enumerate(batch)]
        sleeps: list[float] = []
        sink.write(batch, sleep=sleeps.append, origins=origins)

        assert sleeps == []  # nothing retried: a data error is not an outage
        assert store.ids() == {a.id for a in good}
        row = next(r for r in store.list_alerts(limit=100) if r["id"] == good[-1].id)
        assert (row["title"], row["evidence"]) == ("a\u2400b", [{"content": "x\u2400y"}])
        letters = {letter.alert_id: letter for letter in sink.letters}
        assert set(letters) == {p.id for p, _ in poisoned}
        for alert, reasons in poisoned:
            letter = letters[alert.id]
            assert letter.reason in reasons
            headers = dict(letter.headers())
            assert headers["custodes.reason"] == letter.reason.encode()
            assert headers["custodes.source.offset"] == str(batch.index(alert)).encode()
            assert letter.value == origins[batch.index(alert)].value  # the original message
            assert alert.subject.encode() not in headers["custodes.detail"]
        by_reason = {r: registry.get_sample_value("custodes_sink_alerts_dead_lettered_total", {"reason": r})
                     for r in SINK_REASONS}
        assert sum(v or 0 for v in by_reason.values()) == len(poisoned)
        assert registry.get_sample_value("custodes_sink_database_up") == 1
        assert registry.get_sample_value("custodes_sink_database_errors_total") == 0
        assert registry.get_sample_value(
            "custodes_alerts_stored_total", {"detector": "bulk_export", "severity": "high"}) == len(good)
    finally:
        store.dispose()


class PoisonAndOutageStore(FlakyStore):
    """Refuses alert ``bad`` for good (DataError) and is down for ``failures`` calls at chosen moments."""

    def __init__(self, bad: str, down_at: set[int]) -> None:
        super().__init__(0)
        self.bad = bad
        self.down_at = down_at
        self.calls = 0

    def upsert_alerts(self, batch):
        self.calls += 1
        if self.calls in self.down_at:
            raise OperationalError("INSERT", {}, Exception("connection refused"))
        if any(a.id == self.bad for a in batch):
            raise DataError("INSERT", {}, Exception("value out of range"))
        return super().upsert_alerts(batch)


@pytest.mark.parametrize("down_at", [set(), {1}, {2}, {3, 4}, {5}])
def test_an_outage_while_isolating_a_poisoned_alert_is_retried_and_loses_nothing(down_at):
    alerts = [make_alert(n) for n in range(1, 6)]
    store = PoisonAndOutageStore(alerts[2].id, down_at)
    registry = CollectorRegistry()
    sink = Sink(load(env={}), registry=registry, store=store)
    sleeps: list[float] = []
    sink.write(alerts, sleep=sleeps.append)
    assert set(store.rows) == {a.id for i, a in enumerate(alerts) if i != 2}
    assert [letter.alert_id for letter in sink.letters] == [alerts[2].id]
    assert len(sleeps) == len(down_at)
    assert registry.get_sample_value("custodes_sink_database_errors_total") == len(down_at)
    assert registry.get_sample_value("custodes_sink_database_up") == 1


def test_a_permanent_error_is_told_from_an_outage():
    def wrapped(cls, orig):
        return cls("INSERT", {}, orig)

    class PgError(Exception):
        def __init__(self, sqlstate):
            self.sqlstate = sqlstate

    assert permanent_reason(wrapped(OperationalError, Exception("connection refused"))) is None
    assert permanent_reason(wrapped(OperationalError, PgError("08006"))) is None  # connection failure
    assert permanent_reason(wrapped(OperationalError, PgError("57P01"))) is None  # admin shutdown
    assert permanent_reason(wrapped(OperationalError, PgError("53300"))) is None  # too many connections
    assert permanent_reason(wrapped(InterfaceError, Exception("connection already closed"))) is None
    assert permanent_reason(wrapped(OperationalError, PgError("54000"))) == "data_error"  # index row too big
    assert permanent_reason(wrapped(DataError, PgError("22021"))) == "data_error"  # bad byte sequence
    assert permanent_reason(wrapped(IntegrityError, Exception("NOT NULL"))) == "integrity_error"
    assert permanent_reason(OverflowError("year out of range")) == "bad_value"
    assert permanent_reason(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates")) == "bad_value"
    assert permanent_reason(RuntimeError("?")) is None


@pytest.mark.kafka
def test_the_sink_on_kafka_dead_letters_a_poisoned_alert_and_commits_past_it(kafka_broker, topic_prefix, tmp_path):
    """The running sink: one poisoned alert and one undecodable message among good alerts on the real
    alerts topic. The good ones are stored, the two others are on the alerts' dead-letter topic with
    their reasons and positions, and the offsets are committed past all of them (a restarted sink
    reads nothing again)."""
    import threading

    from kafka import KafkaConsumer, KafkaProducer

    from stream.contract.topics import ensure_topics
    from tests.stream.processes import wait_until, write_config

    path = write_config(tmp_path / "custodes.toml", topic_prefix, partitions=1, retention_interval_s=0)
    settings = load(path, env={"CUSTODES_BROKER": kafka_broker.bootstrap, "CUSTODES_DATA_DIR": str(tmp_path)})
    ensure_topics(settings, kafka_broker.bootstrap)
    good = [make_alert(n) for n in range(1, 5)]
    bad = dataclasses.replace(make_alert(99), ts=1e20)
    values = [orjson.dumps(a.to_dict()) for a in good[:2]] + [orjson.dumps(bad.to_dict()), b'{"not": "an alert"}']
    values += [orjson.dumps(a.to_dict()) for a in good[2:]]
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for v in values:
        producer.send(settings.topics.alerts, v)
    producer.flush()
    producer.close()

    def run_sink() -> tuple[Sink, CollectorRegistry, threading.Thread]:
        registry = CollectorRegistry()
        sink = Sink(settings, registry=registry)
        thread = threading.Thread(target=sink.run, daemon=True)
        thread.start()
        return sink, registry, thread

    sink, registry, thread = run_sink()
    try:
        wait_until(lambda: (registry.get_sample_value("custodes_sink_alerts_consumed_total") or 0) >= len(values),
                   60, message="every alert message consumed")
        wait_until(lambda: sink.store is not None and sink.store.ids() == {a.id for a in good}, 30,
                   message="the good alerts stored")
    finally:
        sink.stopping.set()
        thread.join(30)
    assert registry.get_sample_value("custodes_sink_alerts_dead_lettered_total", {"reason": "bad_value"}) == 1
    assert registry.get_sample_value("custodes_sink_alerts_dead_lettered_total", {"reason": "undecodable"}) == 1
    assert registry.get_sample_value("custodes_sink_database_up") == 1

    consumer = KafkaConsumer(settings.topics.alerts_dead_letter, bootstrap_servers=kafka_broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    letters = list(consumer)
    consumer.close()
    got = sorted((dict(r.headers)["custodes.reason"], dict(r.headers)["custodes.source.offset"], r.value)
                 for r in letters)
    assert got == [(b"bad_value", b"2", values[2]), (b"undecodable", b"3", values[3])]

    again, registry, thread = run_sink()  # the offsets were committed past every message
    try:
        wait_until(lambda: again.assigned, 60, message="assigned")
        time.sleep(2)
        assert (registry.get_sample_value("custodes_sink_alerts_consumed_total") or 0) == 0
    finally:
        again.stopping.set()
        thread.join(30)


def test_an_alert_message_that_is_not_an_object_is_undecodable_not_a_crash():
    from stream.store.sink import decode_alert

    for value in (b'"a string"', b"[1, 2]", b"3", b"null"):
        with pytest.raises((TypeError, ValueError)):
            decode_alert(value)
    with pytest.raises(ValueError):  # replay's ISO times are accepted, nonsense in their place is not
        decode_alert(b'{"ts": "yesterday"}')
