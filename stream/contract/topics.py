"""Creating Custodes' topics with the right partitions and retention, and checking existing ones.

Every topic Custodes creates keeps data for the retention window at most (``retention.ms``). The
detector-state changelog is compacted instead (one value per user, deleted by a tombstone when the
state expires); see docs/retention.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import TopicAlreadyExistsError

from stream.contract.settings import Settings


def data_topics(settings: Settings) -> list[str]:
    t = settings.topics
    return [t.events, t.rerouted, t.dead_letter, t.alerts, t.alerts_dead_letter, t.activity_days, t.sigma_groups]


def changelog_topics(settings: Settings) -> list[str]:
    return [f"{settings.app_id}-detector-state-changelog", f"{settings.app_id}-sigma-group-state-changelog"]


@dataclass(frozen=True)
class TopicCheck:
    topic: str
    partitions: int
    retention_ms: int | None
    problem: str | None


def admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="custodes-admin",
                            request_timeout_ms=30_000)


def create_missing(bootstrap: str, wanted: dict[str, dict]) -> list[str]:
    """Create each topic in ``wanted`` (name -> kafka-python create options) that does not exist yet;
    returns the names created. Another process creating one at the same time is fine."""
    client = admin(bootstrap)
    try:
        existing = set(client.list_topics())
        created = []
        for name, options in wanted.items():
            if name in existing:
                continue
            try:
                client.create_topics({name: dict(options)}, wait_for_metadata=True)
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        client.close()


def ensure_topics(settings: Settings, bootstrap: str) -> list[str]:
    """Create missing data topics with the window as their retention; returns the names created."""
    options = {
        "num_partitions": settings.partitions,
        "replication_factor": settings.replication_factor,
        "configs": {"retention.ms": str(settings.retention_s * 1000), "cleanup.policy": "delete"},
    }
    return create_missing(bootstrap, dict.fromkeys(data_topics(settings), options))


def check_topics(settings: Settings, bootstrap: str) -> list[TopicCheck]:
    """Report every Custodes topic, flagging retention longer than the window (or unlimited)."""
    client = admin(bootstrap)
    try:
        existing = set(client.list_topics())
        names = [n for n in data_topics(settings) if n in existing]
        if not names:
            return []
        resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
        described = client.describe_configs(resources, config_filter="all")["topic"]
        meta = {t["name"]: len(t["partitions"]) for t in client.describe_topics(names)}
        limit_ms = settings.retention_s * 1000
        out = []
        for name in names:
            raw = described.get(name, {}).get("retention.ms", {}).get("value")
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
