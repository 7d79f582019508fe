"""Reference data for the detectors at run time: files in ``config/reference/`` and compacted topics.

Detectors read ``holder.current`` (a snapshot, see detectors/reference.py); this module swaps it.
- Files (``reference_dir``, default ``config/reference``): loaded at start; the worker checks every
  ``reference_reload_s`` and reloads when a file changed, so an edit takes effect without a restart.
- Topics (``<reference_topic_prefix><kind>``, compacted, one per kind, keyed by the kind's key field):
  every worker reads all partitions from the beginning and then follows them, so each worker holds
  the whole register whichever partitions of the events it owns. A message applies on top of the
  files; a null value (tombstone) deletes the record named by its key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

import orjson

from detectors.reference import KEY_FIELDS, KINDS, Reference, ReferenceHolder, decode_update, kind_of, load
from stream.contract.settings import Settings

log = logging.getLogger("custodes.reference")


def reference_files(directory: Path | None) -> dict[str, str]:
    if directory is None or not directory.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.iterdir())
            if p.suffix in (".jsonl", ".csv") and p.is_file()}


def signature(directory: Path | None) -> tuple:
    if directory is None or not directory.is_dir():
        return ()
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(directory.iterdir())
                 if p.suffix in (".jsonl", ".csv"))


def load_dir(directory: Path | None) -> Reference:
    return _check_identities(load(reference_files(directory)))


def _check_identities(reference: Reference) -> Reference:
    """Build the staff directory's alias index now (not on the first event) and say, without naming
    them, how many aliases are listed for more than one person (they resolve to nobody)."""
    if reference.staff and reference.identities.ambiguous:
        log.warning("%d alias(es) in the staff directory are listed for more than one person: events under "
                    "them are counted as unknown identities until the directory is corrected",
                    reference.identities.ambiguous)
    return reference


def detectors_for(settings: Settings, *, hot_rules: bool = False) -> tuple[ReferenceHolder, list]:
    """The enabled detectors, configured from ``settings.detectors`` and reading reference data from a
    holder loaded from ``settings.reference_dir`` (the worker swaps its snapshot on updates), then the
    Sigma rules unit (``[rules]``, stream/detection/rules.py) when rules load, or always with ``hot_rules`` (the
    worker: rules added later are picked up by its reloader)."""
    from detectors import registry
    from detectors.sigma import SigmaRules
    from stream.detection.rules import detector_for, sigma_config

    holder = ReferenceHolder(load_dir(settings.reference_dir))
    detectors = registry.build(with_org_domains(settings), holder)
    rules, unit = detector_for(settings, holder)
    if unit is None and hot_rules and settings.rules.enabled:
        unit = SigmaRules(rules, sigma_config(settings.rules), holder)
    if unit is not None:
        detectors.append(unit)
    return holder, detectors


def with_org_domains(settings: Settings) -> dict[str, dict]:
    """``settings.detectors`` with the site-wide ``org_domains`` (when set) added to the third-party
    transfer detector's ``internal_domains``: the readers mark shares external by the same list."""
    config = settings.detectors
    if not settings.org_domains:
        return config
    from detectors.third_party_transfer import ThirdPartyTransferConfig

    own = dict(config.get("third_party_transfer", {}))
    domains = own.get("internal_domains", ThirdPartyTransferConfig.internal_domains)
    own["internal_domains"] = [*domains, *(d for d in settings.org_domains if d not in domains)]
    return {**config, "third_party_transfer": own}


def topics(settings: Settings) -> dict[str, str]:
    """Topic name -> kind."""
    return {f"{settings.reference_topic_prefix}{kind}": kind for kind in KINDS}


class FileReloader:
    """Reloads the reference files when they change; topic updates seen so far are re-applied on top."""

    def __init__(self, holder: ReferenceHolder, directory: Path | None) -> None:
        self.holder = holder
        self.directory = directory
        self.seen = signature(directory)
        self.from_topics: dict[tuple[str, str], tuple[str, dict | None, str | None]] = {}

    def remember(self, updates: Iterable[tuple[str, dict | None, str | None]]) -> None:
        for kind, record, key in updates:
            k = key if key is not None else str((record or {}).get(KEY_FIELDS[kind]))
            self.from_topics[(kind, k)] = (kind, record, key)

    def check(self) -> bool:
        now = signature(self.directory)
        if now == self.seen:
            return False
        self.seen = now
        try:
            fresh = load_dir(self.directory).apply_many(self.from_topics.values())
        except Exception as exc:  # noqa: BLE001 - a bad edit must not stop detection: keep the old data
            log.error("reference files not reloaded: %s", exc)
            return False
        self.holder.replace(fresh)
        log.info("reference files reloaded")
        return True


async def follow_topics(settings: Settings, holder: ReferenceHolder, reloader: FileReloader,
                        stop: asyncio.Event) -> None:
    """Read every reference topic from the beginning, then follow it, applying updates to ``holder``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    names = topics(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=(settings.broker or "").split(","), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                client_id="custodes-reference")
    await consumer.start()
    try:
        parts = []
        for name in names:
            for p in consumer.partitions_for_topic(name) or await _partitions(consumer, name):
                parts.append(TopicPartition(name, p))
        if not parts:
            return
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            updates = []
            for tp, records in batches.items():
                kind = names[tp.topic]
                for r in records:
                    try:
                        updates.append(decode_update(kind, r.key, r.value))
                    except Exception as exc:  # noqa: BLE001
                        log.error("reference update on %s@%d skipped: %s", tp.topic, r.offset, exc)
            if updates:
                try:
                    holder.apply_many(updates)
                    reloader.remember(updates)
                except Exception as exc:  # noqa: BLE001
                    log.error("reference updates not applied: %s", exc)
    finally:
        await consumer.stop()


async def _partitions(consumer, name: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
    return consumer.partitions_for_topic(name) or set()


def ensure_reference_topics(settings: Settings, bootstrap: str) -> list[str]:
    """Create the compacted reference topics (retention does not apply: a register is current state)."""
    from stream.contract.topics import create_missing

    options = {"num_partitions": 1, "replication_factor": settings.replication_factor,
               "configs": {"cleanup.policy": "compact"}}
    return create_missing(bootstrap, dict.fromkeys(topics(settings), options))


def push(settings: Settings, paths: Iterable[Path]) -> dict[str, int]:
    """Produce reference files (``staff.jsonl`` …) to their topics, keyed by each record's key field."""
    from kafka import KafkaProducer

    from detectors.reference import parse_records

    ensure_reference_topics(settings, settings.broker or "")
    producer = KafkaProducer(bootstrap_servers=(settings.broker or "").split(","), acks="all",
                             client_id="custodes-reference")
    counts: dict[str, int] = {}
    try:
        for path in paths:
            kind, fmt = kind_of(path.name)
            topic = f"{settings.reference_topic_prefix}{kind}"
            for rec in parse_records(path.read_text(encoding="utf-8"), fmt):
                key = str(rec[KEY_FIELDS[kind]]).encode()
                value = None if rec.get("deleted") is True else orjson.dumps(rec)
                producer.send(topic, key=key, value=value)
                counts[kind] = counts.get(kind, 0) + 1
        producer.flush()
    finally:
        producer.close()
    return counts
