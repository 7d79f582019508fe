"""A Sigma correlation rule through a real Apache Kafka broker, across a worker killed with SIGKILL:
the counts made before the kill survive in the detector-state table's changelog, so the correlation
(config/rules/repeated_external_shares.yml: five distinct documents shared out within an hour) fires
when the fifth document arrives after the restart, once, as replay finds offline."""

from __future__ import annotations

import signal
import time

import orjson
import pytest
from kafka import KafkaProducer

from stream.contract.partitioning import home_partition
from tests.stream.events import iso
from tests.stream.processes import Custodes, wait_until

pytestmark = pytest.mark.kafka

CORRELATION = "61c0e7b2-9f4d-4b3a-a8e5-7d2c1f0b9e48"


@pytest.fixture
def custodes(kafka_broker, topic_prefix, tmp_path):
    c = Custodes(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/custodes.db",
                 {"partitions": 2, "log_level": "warning"})
    yield c
    c.stop_all()


def share(user: str, ts: float, n: int) -> bytes:
    return orjson.dumps({"@timestamp": iso(ts), "user": {"id": user}, "event": {"id": f"{user}-{n}"},
                         "custodes": {"activity": "share", "share": {"visibility": "external"},
                                      "object": {"id": f"doc-{n}"}}})


def alerts_of(bootstrap: str, topic: str) -> list[dict]:
    from tests.resilience.common import read_all

    return [orjson.loads(r.value) for r in read_all(bootstrap, topic, idle_ms=2000)]


def test_correlation_state_survives_a_worker_kill(custodes):
    settings = custodes.settings
    now = time.time()
    user = "pc-sigma-1"
    producer = KafkaProducer(bootstrap_servers=custodes.bootstrap)
    partition = home_partition(user, settings.partitions)

    def send(n: int) -> None:
        producer.send(settings.topics.events, key=user.encode(), value=share(user, now - 600 + n * 60, n),
                      partition=partition)
        producer.flush()

    custodes.start("worker")
    custodes.wait_ready("worker")
    for n in range(3):
        send(n)
    wait_until(lambda: custodes.total("custodes_events_processed_total") >= 3, 60, message="3 shares processed")
    time.sleep(1.0)  # the state write follows the acknowledgement of the batch's outputs
    custodes.stop("worker", sig=signal.SIGKILL)
    assert not [a for a in alerts_of(custodes.bootstrap, settings.topics.alerts)
                if a["facts"].get("rule_id") == CORRELATION]

    custodes.start("worker")
    custodes.wait_ready("worker")
    send(3)
    send(4)  # the fifth distinct document within the hour
    wait_until(lambda: custodes.total("custodes_events_processed_total") >= 2, 60, message="2 more processed")

    def fired() -> list[dict]:
        return [a for a in alerts_of(custodes.bootstrap, settings.topics.alerts)
                if a["facts"].get("rule_id") == CORRELATION]

    wait_until(lambda: fired(), 60, message="the correlation alert")
    (alert,) = {a["id"]: a for a in fired()}.values()
    assert alert["detector"] == "sigma" and alert["subject"] == user
    assert alert["facts"]["observed"] == 5 and alert["facts"]["correlation"] == "value_count"
    producer.close()


RULE = """title: Printing a special-category dataset
id: 5e0c1a2b-3d4f-4a6b-8c7d-9e0f1a2b3c4d
logsource:
    product: custodes
detection:
    selection:
        custodes.activity: print
        custodes.dataset.sensitivity: special
    condition: selection
level: high
"""


def test_a_rule_added_to_the_directory_runs_without_restarting_the_worker(kafka_broker, topic_prefix, tmp_path):
    rules_dir = tmp_path / "site-rules"
    rules_dir.mkdir()
    c = Custodes(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/custodes.db",
                 {"partitions": 1, "log_level": "warning", "reference_reload_s": 1})
    text = c.config.read_text()
    assert "dirs = []" in text
    c.config.write_text(text.replace("dirs = []", f'dirs = ["{rules_dir}"]', 1))
    settings = c.settings
    producer = KafkaProducer(bootstrap_servers=c.bootstrap)
    now = time.time()

    def send(n: int) -> None:
        doc = {"@timestamp": iso(now - 100 + n), "user": {"id": f"pc-print-{n}"}, "event": {"id": f"p{n}"},
               "custodes": {"activity": "print", "dataset": {"name": "mh", "sensitivity": "special"}}}
        producer.send(settings.topics.events, key=f"pc-print-{n}".encode(), value=orjson.dumps(doc), partition=0)
        producer.flush()

    def printed() -> list[dict]:
        return [a for a in alerts_of(c.bootstrap, settings.topics.alerts)
                if a["facts"].get("rule_id") == "5e0c1a2b-3d4f-4a6b-8c7d-9e0f1a2b3c4d"]

    try:
        c.start("worker")
        c.wait_ready("worker")
        assert c.total("custodes_sigma_rules") > 0  # the shipped rules
        send(0)
        wait_until(lambda: c.total("custodes_events_processed_total") >= 1, 60, message="first print processed")
        assert not printed()
        detections = c.metrics()[("custodes_sigma_rules", (("state", "detection"),))]
        (rules_dir / "print_special.yml").write_text(RULE)
        wait_until(lambda: c.metrics()[("custodes_sigma_rules", (("state", "detection"),))] == detections + 1,
                   30, message="the new rule loaded")
        send(1)
        wait_until(lambda: printed(), 60, message="the new rule's alert")
        (alert,) = printed()
        assert alert["subject"] == "pc-print-1" and alert["severity"] == "high"
        assert c.procs["worker"].poll() is None  # the same process throughout
    finally:
        producer.close()
        c.stop_all()
