"""Custodes' Grafana dashboards, described in Python (deploy/grafana/model.py has the shapes).

Regenerate the JSON after an edit: ``python deploy/grafana/build.py`` (``--check`` fails if the files
differ; tests/deploy/test_dashboards_code.py runs it). Dashboard UIDs are stable: links and
provisioning depend on them. Panel ids and grid positions follow from the order below.
"""

from __future__ import annotations

from model import Dashboard, Row, Stat, TimeSeries, q, rate_by

DETECTIONS = Dashboard(
    uid='custodes-detections',
    title='Custodes / Detections',
    description='Alerts raised by the detectors, by detector and severity, and alerts stored for review.',
    file='detections.json',
    rows=(
        Row('In the selected time range', (
            Stat(
                'Alerts raised',
                'Alerts emitted by the detectors in the selected range.',
                (
                    q('sum(increase(custodes_alerts_raised_total[$__range]))'),
                ),
                decimals=0,
            ),
            Stat(
                'Critical and high',
                'Alerts of severity critical or high raised in the selected range.',
                (
                    q('sum(increase(custodes_alerts_raised_total{severity=~"critical|high"}[$__range])) or vector(0)'),
                ),
                decimals=0,
                thresholds=(('green', None), ('red', 1)),
            ),
            Stat(
                'Alerts stored',
                'Alert rows written to the store by the sink in the selected range.',
                (
                    q('sum(increase(custodes_alerts_stored_total[$__range]))'),
                ),
                decimals=0,
            ),
            Stat(
                'Detectors raising alerts',
                'Detectors that raised at least one alert in the selected range.',
                (
                    q('count(sum by (detector) (increase(custodes_alerts_raised_total[$__range])) > 0) or vector(0)'),
                ),
                decimals=0,
            ),
        )),
        Row('Over time', (
            TimeSeries(
                'Alerts by detector',
                'Alerts raised per detector (per interval).',
                (
                    q('sum by (detector) (increase(custodes_alerts_raised_total[$__rate_interval]))', '{{detector}}'),
                ),
                bars=True,
                stacked=True,
            ),
            TimeSeries(
                'Alerts by severity',
                'Alerts raised per severity (per interval).',
                (
                    q('sum by (severity) (increase(custodes_alerts_raised_total[$__rate_interval]))', '{{severity}}'),
                ),
                bars=True,
                stacked=True,
            ),
            TimeSeries(
                'Alerts by detector and severity',
                'Alerts raised per second, by detector and severity.',
                (
                    q(
                        'sum by (detector, severity) (rate(custodes_alerts_raised_total[$__rate_interval]))',
                        '{{detector}} / {{severity}}',
                    ),
                ),
                unit='ops',
            ),
            TimeSeries(
                'Alerts stored by severity',
                'Alert rows the sink wrote to the store per second (inserted or updated).',
                (
                    q('sum by (severity) (rate(custodes_alerts_stored_total[$__rate_interval]))', '{{severity}}'),
                ),
                unit='ops',
            ),
            TimeSeries(
                'Alerts raised in the last 24 hours',
                'Rolling 24-hour count per detector.',
                (
                    q('sum by (detector) (increase(custodes_alerts_raised_total[24h]))', '{{detector}}'),
                ),
                w=24,
            ),
        )),
    ),
)

PIPELINE = Dashboard(
    uid='custodes-pipeline',
    title='Custodes / Pipeline health',
    description=(
        'Throughput, dead letters, event-time and consumer lag, processing time of the workers and the '
        'alert sink.'
    ),
    file='pipeline.json',
    rows=(
        Row('Overview', (
            Stat(
                'Workers up',
                'Worker targets Prometheus scrapes successfully.',
                (
                    q('sum(up{job="custodes-worker"})'),
                ),
                sparkline=False,
                w=4,
            ),
            Stat(
                'Sink up',
                '1 when Prometheus scrapes the alert sink.',
                (
                    q('sum(up{job="custodes-sink"})'),
                ),
                sparkline=False,
                value_text={'0': ('DOWN', 'red'), '1': ('UP', 'green')},
                w=4,
            ),
            Stat(
                'Events consumed',
                'Audit events read from Kafka per second (all workers).',
                (
                    q('sum(rate(custodes_events_consumed_total[$__rate_interval]))'),
                ),
                unit='ops',
                w=4,
            ),
            Stat(
                'Dead-letter ratio',
                'Share of consumed events sent to the dead-letter topic.',
                (
                    q(
                        (
                            'sum(rate(custodes_events_dead_lettered_total[$__rate_interval])) / '
                            'sum(rate(custodes_events_consumed_total[$__rate_interval]))'
                        ),
                    ),
                ),
                unit='percentunit',
                decimals=2,
                thresholds=(('green', None), ('orange', 0.01), ('red', 0.05)),
                w=4,
            ),
            Stat(
                'Consumer lag',
                'Messages the workers are behind the end of their input topics.',
                (
                    q('sum(custodes_consumer_lag_messages)'),
                ),
                thresholds=(('green', None), ('orange', 1000), ('red', 10000)),
                w=4,
            ),
            Stat(
                'Event-time lag p95',
                '95th percentile of now minus the event time of the newest event in each message.',
                (
                    q(
                        (
                            'histogram_quantile(0.95, sum by (le) '
                            '(rate(custodes_event_time_lag_seconds_bucket[$__rate_interval])))'
                        ),
                    ),
                ),
                unit='s',
                thresholds=(('green', None), ('orange', 300), ('red', 900)),
                w=4,
            ),
        )),
        Row('Throughput', (
            TimeSeries(
                'Events consumed by topic',
                'Events read per second from the events topic and the re-keyed topic.',
                (
                    q('sum by (topic) (rate(custodes_events_consumed_total[$__rate_interval]))', '{{topic}}'),
                ),
                unit='ops',
            ),
            TimeSeries(
                'Events processed by activity',
                'Events that passed validation and retention and ran through the detectors.',
                (
                    q('sum by (kind) (rate(custodes_events_processed_total[$__rate_interval]))', '{{kind}}'),
                ),
                unit='ops',
                stacked=True,
            ),
            TimeSeries(
                'Dead letters by reason',
                'Events sent to the dead-letter topic per second, by reason (see docs/deploy.md).',
                (
                    q('sum by (reason) (rate(custodes_events_dead_lettered_total[$__rate_interval]))', '{{reason}}'),
                ),
                unit='ops',
                stacked=True,
            ),
            TimeSeries(
                'Expired, rerouted and redelivered',
                (
                    "Events older than the retention window, events re-keyed to their user's partition, and messages "
                    'redelivered after a restart.'
                ),
                (
                    q('sum(rate(custodes_events_expired_total[$__rate_interval]))', 'expired'),
                    q('sum(rate(custodes_events_rerouted_total[$__rate_interval]))', 'rerouted'),
                    q('sum(rate(custodes_messages_redelivered_total[$__rate_interval]))', 'redelivered messages'),
                ),
                unit='ops',
            ),
        )),
        Row('Lag', (
            TimeSeries(
                'Event-time lag',
                'Now minus event time of the newest event in each processed message: how late detections are.',
                (
                    q(
                        (
                            'histogram_quantile(0.5, sum by (le) '
                            '(rate(custodes_event_time_lag_seconds_bucket[$__rate_interval])))'
                        ),
                        'p50',
                    ),
                    q(
                        (
                            'histogram_quantile(0.95, sum by (le) '
                            '(rate(custodes_event_time_lag_seconds_bucket[$__rate_interval])))'
                        ),
                        'p95',
                    ),
                    q(
                        (
                            'histogram_quantile(0.99, sum by (le) '
                            '(rate(custodes_event_time_lag_seconds_bucket[$__rate_interval])))'
                        ),
                        'p99',
                    ),
                ),
                unit='s',
            ),
            TimeSeries(
                'Consumer lag by topic',
                'Messages behind the end of the assigned partitions, summed per topic.',
                (
                    q('sum by (topic) (custodes_consumer_lag_messages)', '{{topic}}'),
                ),
            ),
            TimeSeries(
                'Consumer lag by partition',
                'Messages behind per partition and worker: one stuck partition shows here.',
                (
                    q(
                        'max by (topic, partition, instance) (custodes_consumer_lag_messages)',
                        '{{topic}}[{{partition}}] {{instance}}',
                    ),
                ),
                w=24,
            ),
        )),
        Row('Processing time', (
            TimeSeries(
                'Micro-batch processing time',
                (
                    'Time to process one micro-batch (the messages gathered for up to batch_max_wait_s or '
                    'batch_max_events: split, detectors, sends, state writes).'
                ),
                (
                    q(
                        (
                            'histogram_quantile(0.5, sum by (le) '
                            '(rate(custodes_batch_processing_seconds_bucket[$__rate_interval])))'
                        ),
                        'p50',
                    ),
                    q(
                        (
                            'histogram_quantile(0.99, sum by (le) '
                            '(rate(custodes_batch_processing_seconds_bucket[$__rate_interval])))'
                        ),
                        'p99',
                    ),
                ),
                unit='s',
            ),
            TimeSeries(
                'Mean time per event',
                'Processing time divided by events consumed.',
                (
                    q(
                        (
                            'sum(rate(custodes_processing_seconds_total[$__rate_interval])) / '
                            'sum(rate(custodes_events_consumed_total[$__rate_interval]))'
                        ),
                        'mean per event',
                    ),
                ),
                unit='s',
            ),
            TimeSeries(
                'Detector CPU share',
                'Seconds per second each detector spends running (0.25 = a quarter of one core).',
                (
                    q('sum by (detector) (rate(custodes_detector_seconds_total[$__rate_interval]))', '{{detector}}'),
                ),
                unit='s',
            ),
            TimeSeries(
                'Users with detector state',
                'Users whose detector state the workers hold.',
                (
                    q('sum by (instance) (custodes_detector_state_users)', '{{instance}}'),
                ),
            ),
        )),
        Row('Alert sink', (
            TimeSeries(
                'Sink throughput',
                'Alert messages read from the alerts topic, rows written to the store, messages rejected.',
                (
                    q('sum(rate(custodes_sink_alerts_consumed_total[$__rate_interval]))', 'consumed'),
                    q('sum(rate(custodes_alerts_stored_total[$__rate_interval]))', 'stored'),
                    q('sum(rate(custodes_sink_alerts_rejected_total[$__rate_interval]))', 'rejected'),
                    q(
                        'sum by (reason) (rate(custodes_sink_alerts_dead_lettered_total[$__rate_interval]))',
                        'dead-lettered: {{reason}}',
                    ),
                ),
                unit='ops',
            ),
            TimeSeries(
                'Store health',
                'Database up (1) or failing (0), and failed write attempts per second.',
                (
                    q('min(custodes_sink_database_up)', 'database up'),
                    q('sum(rate(custodes_sink_database_errors_total[$__rate_interval]))', 'write errors/s'),
                ),
            ),
            TimeSeries(
                'Store write time',
                'Time to write one batch of alerts to the store.',
                (
                    q(
                        (
                            'histogram_quantile(0.5, sum by (le) '
                            '(rate(custodes_sink_write_seconds_bucket[$__rate_interval])))'
                        ),
                        'p50',
                    ),
                    q(
                        (
                            'histogram_quantile(0.99, sum by (le) '
                            '(rate(custodes_sink_write_seconds_bucket[$__rate_interval])))'
                        ),
                        'p99',
                    ),
                ),
                unit='s',
                w=24,
            ),
        )),
        Row('Sources', (
            TimeSeries(
                'User ids not in the staff directory',
                (
                    'Events whose user id is neither a person id nor an alias in the loaded staff directory '
                    '(processed under the id as given), by source. Add the ids as aliases of their person '
                    '(docs/detectors.md, Identity across sources).'
                ),
                rate_by('custodes_identities_unknown_total', 'source'),
                unit='ops',
            ),
            TimeSeries(
                'Events not classified by the activity table',
                (
                    'Events without custodes.activity that no rule of config/activities.toml matched (kept as '
                    'kind other), per second by dataset: a source the table does not yet cover (docs/sources.md).'
                ),
                rate_by('custodes_events_unclassified_total', 'dataset'),
                unit='ops',
                stacked=True,
            ),
            TimeSeries(
                'Activity per day: records stored, events late',
                (
                    "The person story's counts (docs/review.md): activity-day records the sink stored or "
                    'rejected, and events more than a day older than their person\'s newest day, which the '
                    'counts leave out (a source delivering days late).'
                ),
                (
                    *rate_by('custodes_sink_activity_days_total', 'outcome'),
                    *rate_by('custodes_activity_late_events_total', legend='late events'),
                ),
                unit='ops',
                w=24,
            ),
        )),
    ),
)

RETENTION = Dashboard(
    uid='custodes-retention',
    title='Custodes / Retention',
    description=(
        'The retention job that deletes monitoring data older than the retention window, and events that arrive '
        'already expired.'
    ),
    file='retention.json',
    rows=(
        Row('Last run', (
            Stat(
                'Last successful run',
                'Time since the retention job last succeeded.',
                (
                    q('time() - max(custodes_retention_last_success_timestamp_seconds)'),
                ),
                unit='s',
                thresholds=(('green', None), ('orange', 93600), ('red', 172800)),
                sparkline=False,
            ),
            Stat(
                'Deleted in range',
                'Rows deleted by the retention job in the selected range.',
                (
                    q('sum(increase(custodes_retention_deleted_total[$__range]))'),
                ),
                decimals=0,
            ),
            Stat(
                'Run time p95',
                "95th percentile of the retention job's run time in the selected range.",
                (
                    q(
                        (
                            'histogram_quantile(0.95, sum by (le) '
                            '(increase(custodes_retention_run_seconds_bucket[$__range])))'
                        ),
                    ),
                ),
                unit='s',
                sparkline=False,
            ),
            Stat(
                'Expired events in range',
                'Events older than the retention window when they reached a worker; not processed.',
                (
                    q('sum(increase(custodes_events_expired_total[$__range]))'),
                ),
                decimals=0,
            ),
        )),
        Row('Over time', (
            TimeSeries(
                'Deletions by kind',
                'Rows deleted per interval, by kind of data.',
                (
                    q('sum by (kind) (increase(custodes_retention_deleted_total[$__rate_interval]))', '{{kind}}'),
                ),
                bars=True,
                stacked=True,
            ),
            TimeSeries(
                'Retention run time',
                'Mean duration of the retention runs that finished in the interval.',
                (
                    q(
                        (
                            'sum(increase(custodes_retention_run_seconds_sum[1h])) / '
                            'sum(increase(custodes_retention_run_seconds_count[1h]))'
                        ),
                        'mean run time (1h window)',
                    ),
                ),
                unit='s',
            ),
            TimeSeries(
                'Time since last success',
                'Seconds since the last successful retention run.',
                (
                    q('time() - max(custodes_retention_last_success_timestamp_seconds)', 'since last success'),
                ),
                unit='s',
            ),
            TimeSeries(
                'Expired events',
                'Events dropped on arrival because they were older than the retention window.',
                (
                    q('sum(rate(custodes_events_expired_total[$__rate_interval]))', 'expired/s'),
                ),
                unit='ops',
            ),
        )),
    ),
)

REVIEW = Dashboard(
    uid='custodes-review',
    title='Custodes / Review',
    description="The review queue, reviewers' actions and the integrity of the review audit trail.",
    file='review.json',
    rows=(
        Row('Queue', (
            Stat(
                'Review app up',
                '1 when Prometheus scrapes the review app.',
                (
                    q('sum(up{job="custodes-review"})'),
                ),
                sparkline=False,
                value_text={'0': ('DOWN', 'red'), '1': ('UP', 'green')},
                w=4,
            ),
            Stat(
                'Open alerts',
                'Alerts waiting for a reviewer (every status except closed).',
                (
                    q('sum(custodes_review_queue_alerts{status!="closed"})'),
                ),
                thresholds=(('green', None), ('orange', 50), ('red', 200)),
                w=4,
            ),
            Stat(
                'Oldest open alert',
                'Age of the oldest alert nobody has closed.',
                (
                    q('max(custodes_review_oldest_open_alert_age_seconds)'),
                ),
                unit='s',
                thresholds=(('green', None), ('orange', 86400), ('red', 259200)),
                w=4,
            ),
            Stat(
                'Audit chain',
                "Result of the last verification of the review audit trail's hash chain.",
                (
                    q('min(custodes_audit_chain_valid)'),
                ),
                sparkline=False,
                value_text={'0': ('BROKEN', 'red'), '1': ('VALID', 'green')},
                w=4,
            ),
            Stat(
                'Audit chain verified',
                'Time since the audit trail was last verified.',
                (
                    q('time() - max(custodes_audit_chain_last_verified_timestamp_seconds)'),
                ),
                unit='s',
                thresholds=(('green', None), ('orange', 86400), ('red', 172800)),
                sparkline=False,
                w=4,
            ),
            Stat(
                'Reviewer actions',
                'Reviewer actions in the selected range.',
                (
                    q('sum(increase(custodes_review_actions_total[$__range]))'),
                ),
                decimals=0,
                w=4,
            ),
        )),
        Row('Over time', (
            TimeSeries(
                'Queue by status',
                'Alerts in the review queue by status.',
                (
                    q('sum by (status) (custodes_review_queue_alerts)', '{{status}}'),
                ),
                stacked=True,
            ),
            TimeSeries(
                'Age of the oldest open alert',
                'How long the oldest open alert has been waiting.',
                (
                    q('max(custodes_review_oldest_open_alert_age_seconds)', 'oldest open'),
                ),
                unit='s',
            ),
            TimeSeries(
                'Reviewer actions and dispositions',
                'Actions per interval by kind (assign, comment, close as confirmed or dismissed …).',
                (
                    q('sum by (action) (increase(custodes_review_actions_total[$__rate_interval]))', '{{action}}'),
                ),
                bars=True,
                stacked=True,
            ),
            TimeSeries(
                'Logins',
                'Login attempts by outcome; many failures may mean password guessing.',
                (
                    q('sum by (outcome) (increase(custodes_review_logins_total[$__rate_interval]))', '{{outcome}}'),
                ),
                bars=True,
                stacked=True,
            ),
        )),
    ),
)

DASHBOARDS = (DETECTIONS, PIPELINE, RETENTION, REVIEW)
