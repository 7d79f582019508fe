"""Creating Custodes' topics with the right partitions and retention, and checking existing ones.

Every topic Custodes creates keeps data for the retention window at most (``retention.ms``). The
detector-state changelog is compacted instead (one value per user, deleted by a tombstone when the
state expires); see docs/retention.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

from .settings import Settings


def data_topics(settings: Settings) -> list[str]:
    t = settings.topics
    return [t.events, t.rerouted, t.dead_letter, t.alerts]


def changelog_topics(settings: Settings) -> list[str]:
    return [f"{settings.app_id}-detector-state-changelog"]


@dataclass(frozen=True)
class TopicCheck:
    topic: str
    partitions: int
    retention_ms: int | None
    problem: str | None


def admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="custodes-admin",
                            request_timeout_ms=30_000)


def ensure_topics(settings: Settings, bootstrap: str) -> list[str]:
    """Create missing data topics; returns the names created."""
    client = admin(bootstrap)
    try:
        existing = set(client.list_topics())
        wanted = [
            NewTopic(name, settings.partitions, settings.replication_factor,
                     topic_configs={"retention.ms": str(settings.retention_s * 1000),
                                    "cleanup.policy": "delete"})
            for name in data_topics(settings)
            if name not in existing
        ]
        created = []
        for topic in wanted:
            try:
                client.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        client.close()


def check_topics(settings: Settings, bootstrap: str) -> list[TopicCheck]:
    """Report every Custodes topic, flagging retention longer than the window (or unlimited)."""
    client = admin(bootstrap)
    try:
        existing = set(client.list_topics())
        names = [n for n in data_topics(settings) if n in existing]
        if not names:
            return []
        resources = [ConfigResource(ConfigResourceType.TOPIC, n, configs=None) for n in names]
        described = client.describe_configs(resources)
        meta = {t["topic"]: len(t["partitions"]) for t in client.describe_topics(names)}
        limit_ms = settings.retention_s * 1000
        out = []
        for response in described:
            for resource in response.resources:
                name = resource[3]
                configs = {entry[0]: entry[1] for entry in resource[4]}
                raw = configs.get("retention.ms")
                retention = int(raw) if raw not in (None, "") else None
                problem = None
                if retention is None or retention < 0:
                    problem = "keeps data forever (retention.ms unlimited)"
                elif retention > limit_ms:
                    problem = (f"keeps data {retention // 86_400_000} days, longer than the "
                               f"{settings.retention_days}-day window")
                out.append(TopicCheck(name, meta.get(name, 0), retention, problem))
        return sorted(out, key=lambda c: c.topic)
    finally:
        client.close()
