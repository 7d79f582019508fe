"""`custodes ingest` against Apache Kafka: what it packs into one message must fit the broker."""

from __future__ import annotations

import time

import orjson
import pytest
from kafka import KafkaConsumer

from stream.contract.settings import load
from stream.sources.ingest import ingest
from tests.stream.events import export
from tests.stream.processes import write_config

pytestmark = pytest.mark.kafka


@pytest.fixture
def settings(kafka_broker, topic_prefix, tmp_path):
    path = write_config(tmp_path / "custodes.toml", topic_prefix, partitions=1)
    return load(path, env={"CUSTODES_BROKER": kafka_broker.bootstrap, "CUSTODES_DATA_DIR": str(tmp_path)})


def test_large_events_are_packed_into_messages_the_broker_accepts(settings, kafka_broker, tmp_path):
    # 400 notifications of ~6 KB each (long message text): 500 to a message would be ~2.4 MB, over
    # the broker's default message.max.bytes (1,048,588), and the broker would refuse the lot
    now = time.time()
    text = "Address is 12 Acacia Avenue. " * 200
    source = tmp_path / "big.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(export("u1", now - 400 + i, 1, event_id=f"b{i}", kind="message",
                                                      message=text)) for i in range(400)) + b"\n")
    counts = ingest(settings, [source])
    assert counts.events == 400 and not counts.dead_lettered
    assert counts.messages >= 3  # cut by size, not only by count
    consumer = KafkaConsumer(settings.topics.events, bootstrap_servers=kafka_broker.bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000, fetch_max_bytes=16 << 20,
                             max_partition_fetch_bytes=16 << 20)
    ids, sizes = [], []
    for record in consumer:
        sizes.append(len(record.value))
        ids.extend(orjson.loads(line)["event"]["id"] for line in record.value.split(b"\n"))
    consumer.close()
    assert ids == [f"b{i}" for i in range(400)]  # all of them, in order
    assert max(sizes) <= settings.ingest_batch_max_bytes


def test_an_event_larger_than_a_message_may_be_is_dead_lettered_with_its_reason(settings, kafka_broker, tmp_path):
    now = time.time()
    small = settings.model_copy(update={"ingest_batch_max_bytes": 4096})
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(b"\n".join([
        orjson.dumps(export("u1", now - 10, 1, event_id="ok1")),
        orjson.dumps(export("u1", now - 9, 1, event_id="huge", kind="message", message="x" * 5000)),
        orjson.dumps(export("u1", now - 8, 1, event_id="ok2")),
    ]) + b"\n")
    counts = ingest(small, [source])
    assert counts.events == 2 and counts.dead_lettered == {"event_too_large": 1}
    consumer = KafkaConsumer(settings.topics.dead_letter, bootstrap_servers=kafka_broker.bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    letters = list(consumer)
    consumer.close()
    assert len(letters) == 1 and orjson.loads(letters[0].value)["event"]["id"] == "huge"
    headers = dict(letters[0].headers)
    assert headers["custodes.reason"] == b"event_too_large" and headers["custodes.source.line"] == b"2"


def test_events_go_to_the_persons_partition_and_unknown_ids_are_counted(kafka_broker, topic_prefix, tmp_path):
    """Aliases of one person (shipped staff directory: pc-1001) are sent to pc-1001's home partition, so
    the worker has nothing to re-key; an id the directory does not know is counted, never named."""
    from stream.contract.partitioning import home_partition

    path = write_config(tmp_path / "custodes.toml", topic_prefix, partitions=4)
    settings = load(path, env={"CUSTODES_BROKER": kafka_broker.bootstrap, "CUSTODES_DATA_DIR": str(tmp_path)})
    now = time.time()
    users = ["a.morgan@force.example", "FORCE\\AMORGAN", "amorgan@force", "4412", "pc-1001", "stranger@gmail.com"]
    assert len({home_partition(u, 4) for u in users[:5]}) > 1  # the aliases alone would scatter
    source = tmp_path / "aliases.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(export(u, now - 60 + i, 1, event_id=f"a{i}"))
                                  for i, u in enumerate(users)) + b"\n")
    counts = ingest(settings, [source])
    assert counts.events == 6 and dict(counts.summary.unknown_identities) == {"unknown": 1}
    consumer = KafkaConsumer(settings.topics.events, bootstrap_servers=kafka_broker.bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    where = {orjson.loads(line)["event"]["id"]: record.partition for record in consumer
             for line in record.value.split(b"\n")}
    consumer.close()
    assert {where[f"a{i}"] for i in range(5)} == {home_partition("pc-1001", 4)}
    assert where["a5"] == home_partition("stranger@gmail.com", 4)
