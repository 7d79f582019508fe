"""Input as large as the broker accepts is still dead-lettered, not a poison message for the worker."""

from __future__ import annotations

import time

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from stream.contract.partitioning import home_partition
from tests.stream.events import export
from tests.stream.processes import Custodes, wait_until

pytestmark = pytest.mark.kafka


@pytest.fixture
def custodes(kafka_broker, topic_prefix, tmp_path):
    c = Custodes(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/t.db", {"partitions": 2})
    yield c
    c.stop_all()


def test_a_message_near_the_broker_limit_is_dead_lettered_and_the_worker_carries_on(custodes, kafka_broker):
    custodes.start("worker")
    custodes.wait_ready("worker", 120)
    topic = custodes.settings.topics.events
    # invalid JSON as large as one message may be (the broker's message.max.bytes is 1,048,588): its
    # dead letter, with the reason headers, must not grow past what the broker accepts
    huge = b'{"message": "' + b"a" * 1_040_000
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all", max_request_size=2 << 20)
    producer.send(topic, huge, partition=0).get(timeout=30)
    # a valid event of ~1 MB on a partition other than its user's: re-keyed whole through the rerouted topic
    big = export("u1", time.time() - 120, 1, event_id="big", kind="record_access")
    big["custodes"]["record"] = {"ids": [f"P{i:07d}-" + "r" * 100 for i in range(9_000)]}
    line = orjson.dumps(big)
    assert 1_000_000 < len(line) < 1_040_000
    wrong = 1 - home_partition("u1", 2)
    producer.send(topic, line, partition=wrong).get(timeout=30)
    producer.send(topic, orjson.dumps(export("u1", time.time() - 60, 1, event_id="after")), partition=0).get(30)
    producer.close()
    wait_until(lambda: custodes.total("custodes_events_processed_total") >= 2, 90,
               message="the re-keyed big event and the event after the huge one to be processed")
    assert custodes.procs["worker"].poll() is None
    assert custodes.total("custodes_events_consumed_total") == 4  # the big one is consumed twice
    consumer = KafkaConsumer(custodes.settings.topics.dead_letter, bootstrap_servers=kafka_broker.bootstrap,
                             group_id=None, auto_offset_reset="earliest", consumer_timeout_ms=5000,
                             fetch_max_bytes=4 << 20, max_partition_fetch_bytes=4 << 20)
    letters = list(consumer)
    consumer.close()
    assert len(letters) == 1
    headers = dict(letters[0].headers)
    assert headers["custodes.reason"] == b"invalid_json"
    # the head of the input, cut to dead_letter_max_bytes, and its original size
    assert letters[0].value == huge[:custodes.settings.dead_letter_max_bytes]
    assert headers["custodes.truncated"] == str(len(huge)).encode()


def test_a_re_keyed_event_the_rerouted_topic_refuses_is_dead_lettered_as_unroutable(custodes, kafka_broker):
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    custodes.start("worker")
    custodes.wait_ready("worker", 120)
    s = custodes.settings
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, s.topics.rerouted,
                                        configs={"max.message.bytes": "20000"})])
    admin.close()
    wait_until(lambda: kafka_broker.topic_config(s.topics.rerouted)["max.message.bytes"] == "20000", 30,
               message="the broker to apply the topic limit")
    big = export("u1", time.time() - 120, 1, event_id="big", kind="record_access")
    big["custodes"]["record"] = {"ids": [f"P{i:07d}-" + "r" * 100 for i in range(300)]}  # ~33 kB
    line = orjson.dumps(big)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    producer.send(s.topics.events, line, partition=1 - home_partition("u1", 2)).get(timeout=30)
    producer.send(s.topics.events, orjson.dumps(export("u1", time.time() - 60, 1, event_id="after")),
                  partition=home_partition("u1", 2)).get(timeout=30)
    producer.close()
    wait_until(lambda: custodes.total("custodes_events_dead_lettered_total") >= 1
               and custodes.total("custodes_events_processed_total") >= 1, 60,
               message="the oversized re-keyed event to be dead-lettered and the next one processed")
    assert custodes.procs["worker"].poll() is None
    assert custodes.total("custodes_events_consumed_total") == 2  # consumed = processed + dead-lettered
    assert custodes.metrics()[("custodes_events_dead_lettered_total", (("reason", "unroutable"),))] == 1
    consumer = KafkaConsumer(s.topics.dead_letter, bootstrap_servers=kafka_broker.bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    letters = list(consumer)
    consumer.close()
    assert [dict(r.headers)["custodes.reason"] for r in letters] == [b"unroutable"] and letters[0].value == line
    assert dict(letters[0].headers)["custodes.source.topic"] == s.topics.events.encode()
