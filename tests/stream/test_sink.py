import dataclasses

from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError

from stream.settings import load
from stream.sink import Sink

from .test_store import make_alert


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
