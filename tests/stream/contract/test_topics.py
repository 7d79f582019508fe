"""Topics on Apache Kafka: created with the retention window, checked, and really emptied by the broker."""

from __future__ import annotations

import time

import orjson
import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, TopicPartition

from stream.cli import main
from stream.contract.settings import load
from stream.contract.topics import check_topics, data_topics, ensure_topics
from stream.sources.ingest import ingest
from tests.stream.events import export
from tests.stream.processes import wait_until, write_config

pytestmark = pytest.mark.kafka
DAY_MS = 86_400_000


@pytest.fixture
def settings(kafka_broker, topic_prefix, tmp_path):
    path = write_config(tmp_path / "custodes.toml", topic_prefix, partitions=2)
    return load(path, env={"CUSTODES_BROKER": kafka_broker.bootstrap, "CUSTODES_DATA_DIR": str(tmp_path)})


def test_topics_are_created_with_the_window_as_retention(settings, kafka_broker):
    created = ensure_topics(settings, kafka_broker.bootstrap)
    assert sorted(created) == sorted(data_topics(settings))
    assert ensure_topics(settings, kafka_broker.bootstrap) == []  # idempotent
    for name in data_topics(settings):
        config = kafka_broker.topic_config(name)
        assert int(config["retention.ms"]) == 730 * DAY_MS
        assert config["cleanup.policy"] == "delete"
    assert settings.topics.alerts_dead_letter in data_topics(settings)
    checks = check_topics(settings, kafka_broker.bootstrap)
    assert [c.problem for c in checks] == [None] * len(data_topics(settings))
    assert settings.topics.sigma_groups in data_topics(settings)
    assert {c.partitions for c in checks} == {2}


def test_check_reports_a_topic_that_keeps_data_longer_than_the_window(settings, kafka_broker):
    kafka_broker.create_topic(settings.topics.alerts, 1, {"retention.ms": str(1000 * DAY_MS)})
    kafka_broker.create_topic(settings.topics.dead_letter, 1, {"retention.ms": "-1"})
    ensure_topics(settings, kafka_broker.bootstrap)
    problems = {c.topic: c.problem for c in check_topics(settings, kafka_broker.bootstrap) if c.problem}
    assert problems == {
        settings.topics.alerts: "keeps data 1000 days, longer than the 730-day window",
        settings.topics.dead_letter: "keeps data forever (retention.ms unlimited)",
    }
    result = CliRunner().invoke(main, ["--broker", kafka_broker.bootstrap, "topics", "check"],
                                env={"CUSTODES_CONFIG": str(settings.data_dir / "custodes.toml")})
    assert result.exit_code == 1, result.output
    assert "PROBLEM: keeps data forever" in result.output


def test_the_broker_drops_events_older_than_the_window(settings, kafka_broker, tmp_path):
    """The real two-year window, on real segments: ingest stamps each message with its newest
    event's time, so a batch of three-year-old events is deleted by the broker itself."""
    ensure_topics(settings, kafka_broker.bootstrap)
    topic = settings.topics.events
    # no segment settings needed: the broker rolls a segment whose first message is older than
    # segment.ms, so the three-year-old batches never stay in the active (undeletable) segment
    now = time.time()
    old = tmp_path / "old.jsonl"
    old.write_bytes(b"\n".join(orjson.dumps(export(f"u{i % 2}", now - 3 * 365 * 86400 + i, 1,
                                                   event_id=f"old{i}")) for i in range(40)) + b"\n")
    new = tmp_path / "new.jsonl"
    new.write_bytes(b"\n".join(orjson.dumps(export(f"u{i % 2}", now - 60 + i, 1, event_id=f"new{i}"))
                               for i in range(40)) + b"\n")
    small = settings.model_copy(update={"ingest_batch_events": 2})  # many small messages
    ingest(small, [old])
    ingest(small, [new])

    parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=None)
    try:
        def old_gone():
            start = consumer.beginning_offsets(parts)
            return sum(start.values()) >= 20  # 40 old events in messages of 2
        wait_until(old_gone, 60, message="the broker to delete the expired segments")
    finally:
        consumer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    ids = set()
    for record in consumer:
        for line in record.value.split(b"\n"):
            ids.add(orjson.loads(line)["event"]["id"])
    consumer.close()
    assert ids == {f"new{i}" for i in range(40)}
