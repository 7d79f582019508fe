"""The Faust app: topics, the detector-state table, the routing agent and the worker's web views.

This module only wires. The agent gathers input messages (one event each, or newline-delimited
batches) into micro-batches (``stream.worker.runner``); each runs as a pure step
(``stream.worker.step.run_batch``: decoding, validation, retention and detection live in
``stream.worker.pipeline`` and ``detectors``) whose outcome is delivered in the crash-safe order
(``stream.worker.delivery``): alerts, dead letters and re-keyed events acknowledged by the broker, then
the changed states on the table's changelog, and only then the messages acknowledged to Faust.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from detectors.base import Clock
from stream.contract.settings import Settings
from stream.telemetry.metrics import PipelineMetrics

from . import correlation
from .consumer import _Consumer
from .kafka_output import KafkaOutput, state_table
from .pipeline import Pipeline
from .runner import Runner


def create_app(
    settings: Settings,
    *,
    clock: Clock = time.time,
    registry: CollectorRegistry | None = None,
) -> faust.App:
    if not settings.broker:
        raise ValueError("the worker needs a broker (CUSTODES_BROKER or --broker)")
    from stream.detection.reference import FileReloader, detectors_for, follow_topics

    registry = registry if registry is not None else CollectorRegistry()
    metrics = PipelineMetrics(registry)
    holder, detectors = detectors_for(settings, hot_rules=True)
    reloader = FileReloader(holder, settings.reference_dir)
    from stream.detection.rules import RulesReloader

    sigma_unit = next((d for d in detectors if d.id == "sigma"), None)
    rules_reloader = RulesReloader(sigma_unit.rules, settings.rules) if sigma_unit is not None else None
    if sigma_unit is not None:
        from stream.detection.rules import rules_gauge

        rules_gauge(registry, sigma_unit.rules)
    pipeline = Pipeline(settings, detectors, clock, metrics, reference=holder)
    t = settings.topics
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{b}" for b in settings.broker.split(",")],
        store="memory://",
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee=settings.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_batch_size=settings.producer_batch_max_bytes,
        # any record the broker may hold (an event re-keyed whole, up to max_event_bytes): faust's 1,000,000
        # refused a re-keyed event of 1 MB, and the worker failed on it after every restart
        producer_max_request_size=max(4 << 20, settings.producer_batch_max_bytes),
        web_enabled=settings.worker_port != 0,
        web_bind=settings.web_bind,
        web_port=settings.worker_port or 6066,  # faust refuses port 0 even with the web server off
        web_host=settings.web_bind,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_router_enabled=False,
        web_metrics_enabled=False,
        table_standby_replicas=0,
    )
    app.transport.Consumer = _Consumer  # type: ignore[misc]  # see _Consumer
    app.custodes_fetch_max_wait_s = settings.fetch_max_wait_s  # type: ignore[attr-defined]  # _ConsumerThread

    @app.on_rebalance_complete.connect
    async def hold_fetching(sender: Any = None, **kwargs: Any) -> None:
        """Table recovery is done. Faust now resumes the source partitions, seeks them to the committed
        offsets and clears the agents' queues, in that order, with flow already active and the fetcher
        running: records fetched before the seek would reach the agent (processed, then the ones still
        queued dropped by the clear) or arrive after the clear, out of order. Stopping the consumer's
        flow here makes Faust discard any such fetch and seek back; Faust resumes flow itself after
        the seek and the clear (faust/tables/recovery.py, Recovery.on_recovery_completed)."""
        app.consumer.stop_flow()
    retention = timedelta(seconds=settings.retention_s)
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw",
                           "partitions": settings.partitions, "retention": retention}
    inputs = app.topic(t.events, t.rerouted, **raw)
    rerouted = app.topic(t.rerouted, **raw)
    dead_letter = app.topic(t.dead_letter, **raw)
    days_out = app.topic(t.activity_days, **raw)
    alerts_out = app.topic(t.alerts, **raw)
    state = state_table(app, settings, "detector-state",
                        "Detector state per user (counts, sketches, running statistics; never event lists).")
    exactly_once = settings.processing_guarantee == "exactly_once"
    groups = correlation.attach(app, settings, pipeline, metrics, registry, alerts_out, exactly_once)
    outputs = {"alerts": alerts_out, "dead_letter": dead_letter, "rerouted": rerouted, "activity_days": days_out}
    if groups is not None:  # Sigma correlations grouped by other than the person (stream/worker/correlation.py)
        outputs["sigma_groups"] = groups.topic
    output = KafkaOutput(app, outputs, state, settings.partitions, exactly_once)
    runner = Runner(settings, pipeline, output, state, metrics, clock, lambda: app.consumer, groups)
    if exactly_once:  # every send inside its message's transaction: Faust's agent, one message at a time
        app.agent(inputs, name="custodes-route")(runner.route)
    else:  # fetched record batches straight into the micro-batch (stream/worker/fetched.py)
        app.topics.add(inputs)
        app.consumer.taker = runner
        app.task(runner.flush_gathered)

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        """After Faust has drained the runner for the revocation: the live states of those partitions
        are dropped (another worker may write them next)."""
        runner.forget(revoked)

    @app.on_partitions_assigned.connect
    async def forget_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        """The live states of the partitions assigned are dropped too: the table is recovered from
        the changelog (whoever wrote it last) before any micro-batch runs on them."""
        runner.forget(assigned)

    app.timer(interval=5.0)(runner.report_lag)
    app.timer(interval=float(settings.state_sweep_interval_s))(runner.sweep_state)

    @app.timer(interval=float(settings.reference_reload_s))
    async def reload_reference_files() -> None:
        reloader.check()
        if rules_reloader is not None:
            rules_reloader.check()

    @app.task
    async def follow_reference_topics() -> None:
        await follow_topics(settings, holder, reloader, asyncio.Event())

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health_view(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready_view(web: Any, request: Any) -> Any:
        ready = not app.rebalancing and bool(app.consumer.assignment())
        return web.json({"ready": ready}, status=200 if ready else 503)

    app.custodes_metrics = metrics  # type: ignore[attr-defined]
    app.custodes_registry = registry  # type: ignore[attr-defined]
    app.custodes_pipeline = pipeline  # type: ignore[attr-defined]
    app.custodes_runner = runner  # type: ignore[attr-defined]
    app.custodes_reference = holder  # type: ignore[attr-defined]
    return app


def run_worker(settings: Settings) -> None:
    """Run the worker until SIGINT/SIGTERM (the process's main loop)."""
    from faust.worker import Worker

    from stream.contract.topics import ensure_topics
    from stream.detection.reference import ensure_reference_topics
    from stream.worker.gctune import tune_for_throughput

    ensure_topics(settings, settings.broker or "")
    ensure_reference_topics(settings, settings.broker or "")
    app = create_app(settings)
    tune_for_throughput()
    from stream.telemetry.logs import dict_config

    worker = Worker(app, loglevel=settings.log_level.upper(), quiet=True, redirect_stdouts=False,
                    logging_config=dict_config(settings.log_level))
    worker.execute_from_commandline()
