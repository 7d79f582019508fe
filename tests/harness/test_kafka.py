"""The Kafka harness itself: a real broker that carries messages and survives the lifecycle controls."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

pytestmark = pytest.mark.kafka


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=10, request_timeout_ms=15_000)
    try:
        for value in values:
            producer.send(topic, value).get(timeout=30)
    finally:
        producer.close(timeout=10)


def _consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[bytes]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values.extend(r.value for r in records)
    finally:
        consumer.close()
    return values


def test_broker_binds_loopback_only(kafka_broker):
    host, port = kafka_broker.bootstrap.split(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert kafka_broker.log_path.parent.is_dir()
    assert kafka_broker.is_running


def test_produce_and_consume(kafka_broker, topic_prefix):
    topic = f"{topic_prefix}roundtrip"
    kafka_broker.create_topic(topic, partitions=2)
    _produce(kafka_broker.bootstrap, topic, [b"hello", b"world"])
    assert sorted(_consume_all(kafka_broker.bootstrap, topic, 2)) == [b"hello", b"world"]


def test_auto_created_topic(kafka_broker, topic_prefix):
    topic = f"{topic_prefix}auto"
    _produce(kafka_broker.bootstrap, topic, [b"x"])
    assert _consume_all(kafka_broker.bootstrap, topic, 1) == [b"x"]


def test_topic_prefix_is_unique(topic_prefix):
    assert topic_prefix.startswith("t") and topic_prefix.endswith("-") and len(topic_prefix) == 10


def test_topic_created_with_retention_has_that_config(kafka_broker, topic_prefix):
    topic = f"{topic_prefix}retention"
    kafka_broker.create_topic(topic, partitions=3, config={"retention.ms": 60_000, "segment.ms": 10_000})
    with kafka_broker.admin() as admin:
        result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        described = admin.describe_topics([topic])
    configs = result["topic"][topic]
    assert configs["retention.ms"]["value"] == "60000"
    assert configs["segment.ms"]["value"] == "10000"
    assert len(described[0]["partitions"]) == 3
    assert kafka_broker.topic_config(topic)["retention.ms"] == "60000"


def test_freeze_thaw_keeps_data(kafka_broker, topic_prefix):
    topic = f"{topic_prefix}frozen"
    kafka_broker.create_topic(topic)
    _produce(kafka_broker.bootstrap, topic, [b"before"])
    kafka_broker.freeze()
    try:
        assert kafka_broker.is_frozen and kafka_broker.is_running
        time.sleep(1)
    finally:
        kafka_broker.thaw()
    kafka_broker.wait_ready()
    _produce(kafka_broker.bootstrap, topic, [b"after"])
    assert _consume_all(kafka_broker.bootstrap, topic, 2) == [b"before", b"after"]


def test_stop_start_keeps_data_and_address(kafka_broker, topic_prefix):
    topic = f"{topic_prefix}restart"
    kafka_broker.create_topic(topic, config={"retention.ms": 3_600_000})
    _produce(kafka_broker.bootstrap, topic, [b"one", b"two"])
    bootstrap, pid = kafka_broker.bootstrap, kafka_broker.pid
    kafka_broker.stop()
    assert not kafka_broker.is_running
    kafka_broker.start()
    assert kafka_broker.bootstrap == bootstrap and kafka_broker.pid != pid
    assert _consume_all(kafka_broker.bootstrap, topic, 2) == [b"one", b"two"]
    assert kafka_broker.topic_config(topic)["retention.ms"] == "3600000"


def test_kill_start_keeps_data(kafka_broker, topic_prefix):
    topic = f"{topic_prefix}killed"
    kafka_broker.create_topic(topic)
    _produce(kafka_broker.bootstrap, topic, [b"survives"])
    kafka_broker.kill()
    assert not kafka_broker.is_running
    kafka_broker.start()
    assert _consume_all(kafka_broker.bootstrap, topic, 1) == [b"survives"]


def test_broker_left_stopped_is_restarted_for_the_next_test(kafka_broker):
    kafka_broker.stop()  # the autouse safety net restarts it after this test


def test_broker_is_back(kafka_broker):
    assert kafka_broker.is_running and not kafka_broker.is_frozen
    with kafka_broker.admin() as admin:
        admin.list_topics()
