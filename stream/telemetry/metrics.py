"""Prometheus metrics, created on an injectable registry so tests can assert them.

Names: one ``custodes_`` prefix, base units, ``_total`` only on counters. Labels are bounded: topic,
activity kind, reason (stream.contract.codec.REASONS), detector id, severity, partition. Never a user id,
name, phone number, record id or content.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LAG_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400)


class PipelineMetrics:
    """The worker's counters. Consumed = processed + dead-lettered + expired (+ rerouted, which are
    consumed again from the re-keyed topic and then counted there)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.consumed = Counter(
            "custodes_events_consumed_total", "Audit events read from Kafka.", ["topic"], registry=registry
        )
        self.processed = Counter(
            "custodes_events_processed_total", "Events that passed validation and retention and "
            "went through the detectors.", ["kind"], registry=registry,
        )
        self.dead_lettered = Counter(
            "custodes_events_dead_lettered_total", "Events sent to the dead-letter topic, by reason.",
            ["reason"], registry=registry,
        )
        self.unclassified = Counter(
            "custodes_events_unclassified_total", "Events without custodes.activity that no rule of the "
            "activity table matched (kept as kind other), by dataset: one the table names, 'other' or "
            "'unknown' (none given).", ["dataset"], registry=registry,
        )
        for label in ("other", "unknown"):  # always present, so a dashboard shows 0 rather than no data
            self.unclassified.labels(label)
        self.unknown_identities = Counter(
            "custodes_identities_unknown_total", "Events whose user id is neither a person id nor an alias in "
            "the loaded staff directory (processed under the id as given), by source: a dataset the activity "
            "table names, 'other' or 'unknown' (none given).", ["source"], registry=registry,
        )
        self.expired = Counter(
            "custodes_events_expired_total", "Events older than the retention window, not processed.",
            registry=registry,
        )
        self.rerouted = Counter(
            "custodes_events_rerouted_total", "Events that arrived on a partition other than their "
            "user's and were re-keyed through the rerouted topic.", registry=registry,
        )
        self.duplicates = Counter(
            "custodes_messages_redelivered_total", "Messages seen again after a restart whose effect on "
            "a user's detector state was already applied (counted per user and message; skipped).", registry=registry,
        )
        self.duplicate_events = Counter(
            "custodes_events_duplicate_total", "Events equal to one of the user's recent events (same "
            "canonical document: re-sent by a producer); counted as processed, dropped (not run through "
            "the detectors again).", registry=registry,
        )
        self.activity_late = Counter(
            "custodes_activity_late_events_total", "Events of a day more than one day before the newest day "
            "seen for their person: processed by the detectors, but not in the activity-days counts "
            "(detectors/activity_days.py).", registry=registry,
        )
        self.alerts = Counter(
            "custodes_alerts_raised_total", "Alerts emitted by detectors.", ["detector", "severity"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "custodes_batch_processing_seconds", "Time to process one micro-batch (the messages gathered "
            "for up to batch_max_wait_s or batch_max_events): split, detectors, sends, state writes.",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.batch_messages = Histogram(
            "custodes_batch_messages", "Kafka messages per micro-batch.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000), registry=registry,
        )
        self.processing_seconds = Counter(
            "custodes_processing_seconds_total", "Time spent processing events; divided by "
            "custodes_events_consumed_total it gives the mean time per event.", registry=registry,
        )
        self.detector_seconds = Counter(
            "custodes_detector_seconds", "Time spent in each detector (its rate is the share of a core).",
            ["detector"], registry=registry,
        )
        self.event_lag = Histogram(
            "custodes_event_time_lag_seconds", "Now minus event time of the newest event in each "
            "processed message.", buckets=LAG_BUCKETS, registry=registry,
        )
        self.consumer_lag = Gauge(
            "custodes_consumer_lag_messages", "Messages behind the end of each assigned partition.",
            ["topic", "partition"], registry=registry,
        )
        self.state_expired = Counter(
            "custodes_detector_state_expired_total", "Users' detector state deleted by the sweep because "
            "every event behind it is older than the retention window.", registry=registry,
        )
        self.state_keys = Gauge(
            "custodes_detector_state_users", "Users with detector state held by this worker.",
            registry=registry,
        )
        self.live_states = Gauge(
            "custodes_live_states", "People whose decoded state this worker keeps between micro-batches.",
            registry=registry,
        )
        self.live_state_bytes = Gauge(
            "custodes_live_state_bytes", "Memory the live states take, estimated (bounded by "
            "live_state_max_bytes).", registry=registry,
        )
        self.live_state_reads = Counter(
            "custodes_live_state_reads_total", "Stored states a micro-batch needed: found live (hit) or "
            "decoded from the table (miss).", ["result"], registry=registry,
        )


class SinkMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumed = Counter(
            "custodes_sink_alerts_consumed_total", "Alert messages read from the alerts topic.",
            registry=registry,
        )
        self.stored = Counter(
            "custodes_alerts_stored_total", "Alert rows inserted or updated in the store.",
            ["detector", "severity"], registry=registry,
        )
        self.rejected = Counter(
            "custodes_sink_alerts_rejected_total", "Alert messages that could not be decoded.",
            registry=registry,
        )
        self.dead_lettered = Counter(
            "custodes_sink_alerts_dead_lettered_total", "Alerts (or undecodable alert messages) sent to the "
            "alerts' dead-letter topic because the store refuses them, by reason (stream.store.sink.SINK_REASONS).",
            ["reason"], registry=registry,
        )
        self.db_errors = Counter(
            "custodes_sink_database_errors_total", "Failed attempts to write to the store while it was "
            "unavailable (retried).",
            registry=registry,
        )
        self.db_up = Gauge(
            "custodes_sink_database_up", "1 when the last write to the store succeeded, else 0.",
            registry=registry,
        )
        self.write_seconds = Histogram(
            "custodes_sink_write_seconds", "Time to write one batch of alerts to the store.",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.activity_days = Counter(
            "custodes_sink_activity_days_total", "Activity-day records (one person's counts of one day) "
            "read, by outcome: stored (upserted) or rejected (not a day record; logged, skipped).",
            ["outcome"], registry=registry,
        )
