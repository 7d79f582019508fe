"""custodes deadletters: what is shown of a dead letter (stream.worker.deadletters), without a broker."""

from __future__ import annotations

import pytest

from stream.worker.deadletters import letter, redact


def test_redact_keeps_the_shape_not_the_values() -> None:
    raw = b'{"user": {"id": "PC4412", "name": "Alex Morgan"}, "n": 3, "ok": true, "ids": [1, 2, 3, 4, 5, 6, 7]}'
    shown = redact(raw)
    assert "PC4412" not in shown and "Alex" not in shown
    assert shown == ('{"user":{"id":"<6 chars>","name":"<11 chars>"},"n":"#","ok":true,'
                     '"ids":["#","#","#","#","#","…"]}')
    assert redact(b'{"user": {"id": "PC44') == '{"xxxx": {"xx": "xxxx'
    assert redact(b"\xff\xfe nope") == "<7 bytes, not UTF-8>"
    assert len(redact(b'{"a": "' + b"x" * 5000 + b'", "b": [' + b"1," * 2000 + b'1]}', limit=40)) == 41


def test_letter_from_headers() -> None:
    worker = letter(2, 17, b'{"user": 5}', [
        ("custodes.reason", b"wrong_type"), ("custodes.detail", b"user must be an object"),
        ("custodes.source.topic", b"custodes-audit-events"), ("custodes.source.partition", b"1"),
        ("custodes.source.offset", b"99"), ("custodes.source.line", b"3"), ("custodes.field", b"user")])
    assert worker.field == "user" and worker.reason == "wrong_type"
    assert worker.source == "custodes-audit-events partition 1 offset 99 line 3"
    assert worker.line().splitlines() == [
        "2:17  wrong_type at user  from custodes-audit-events partition 1 offset 99 line 3",
        "    user must be an object", '    {"user":"#"}']
    ingest = letter(0, 0, b"x" * 10, [("custodes.reason", b"invalid_json"), ("custodes.detail", b"not valid JSON"),
                                      ("custodes.source.file", b"/logs/a.jsonl"), ("custodes.source.line", b"4"),
                                      ("custodes.truncated", b"999999")])
    assert ingest.source == "/logs/a.jsonl:4" and ingest.field is None
    assert ingest.excerpt == "xxxxxxxxxx  [input was 999999 bytes, cut]"


@pytest.mark.kafka
def test_reading_only_the_newest_records_of_each_partition(kafka_broker, topic_prefix) -> None:
    """The review app's page reads the newest records of each partition (scan_last), not the whole topic."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    from stream.worker.deadletters import read_topic

    topic = f"{topic_prefix}dead-letter"
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    for i in range(30):
        reason = b"invalid_json" if i < 20 else b"wrong_type"
        producer.send(topic, b'{"n": %d}' % i, partition=i % 2,
                      headers=[("custodes.reason", reason), ("custodes.source.file", b"a.jsonl"),
                               ("custodes.source.line", str(i).encode())])
    producer.flush()
    producer.close()
    everything, counts = read_topic(kafka_broker.bootstrap, topic, 100)
    assert len(everything) == 30 and counts == {"invalid_json": 20, "wrong_type": 10}
    newest, counts = read_topic(kafka_broker.bootstrap, topic, 100, scan_last=5)
    assert sorted(int(d.source.rsplit(":", 1)[1]) for d in newest) == list(range(20, 30))
    assert counts == {"wrong_type": 10} and all(d.at is not None for d in newest)
