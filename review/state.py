"""The review app's running state (one per app) and what reads it without the app: the audit chain's
verification and the dead-letter reader. ``app``, ``pages`` and ``api`` all import from here, so none
of them imports another."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from detectors.risk import RiskConfig
from stream.contract.settings import Settings
from stream.store import audit_chain

from . import audit
from .actions import Review
from .audit import AuditTrail
from .auth import Sessions, Throttle
from .config import ReviewConfig
from .events import Emitter
from .metrics import ReviewMetrics
from .pseudonym import Pseudonymiser

log = logging.getLogger("custodes.review")


@dataclass
class State:
    settings: Settings
    config: ReviewConfig
    risk: RiskConfig
    engine: Engine
    clock: Callable[[], float]
    sessions: Sessions
    trail: AuditTrail
    review: Review
    metrics: ReviewMetrics
    registry: CollectorRegistry
    templates: Jinja2Templates
    pseudo: Pseudonymiser
    emitter: Emitter
    throttle_account: Throttle
    throttle_client: Throttle
    css_hash: str
    head_file: Path
    """The signed audit head, outside the database (``data_dir/audit-head.json``)."""
    dead_letters: DeadLetterReader | None = None
    """Reads recent dead letters for the admin page; None without a broker."""
    directory: Any = None
    """The staff reference of the person pages (review/directory.py: files, plus the reference topics
    with a broker); None: the files of ``settings.reference_dir``."""


DeadLetterReader = Callable[[int, "str | None"], "tuple[list[Any], Counter[str]]"]
"""(how many to show, reason or None) -> (the newest dead letters, oldest first; count per reason of
those read). The review app reads the last ``DEAD_LETTER_SCAN`` records of each partition."""

DEAD_LETTER_SCAN = 500
"""Records per partition of the dead-letter topic the admin page reads (newest)."""


def kafka_dead_letters(settings: Settings) -> DeadLetterReader | None:
    """The dead-letter topic of ``settings.broker``, read without a consumer group (commits nothing)."""
    if not settings.broker:
        return None

    def read(limit: int, reason: str | None):
        from stream.worker.deadletters import read_topic

        return read_topic(settings.broker, settings.topics.dead_letter, limit, reason, timeout_s=3.0,
                          scan_last=DEAD_LETTER_SCAN)

    return read


def remembered_head(state: State) -> tuple[int, str] | None:
    """The newest head this process wrote or verified, or the signed head file, whichever is newer."""
    heads = [h for h in (state.metrics.head, audit_chain.read_head(state.head_file, state.trail.key)) if h]
    return max(heads) if heads else None


def verify_chain(state: State) -> audit.ChainReport:
    try:
        report = audit.verify(state.engine, remembered_head(state), key=state.trail.key)
    except audit_chain.HeadForged as exc:
        report = audit.ChainReport(False, 0, problem=str(exc))
    state.metrics.chain_valid.set(1 if report.ok else 0)
    state.metrics.chain_verified.set(state.clock())
    if report.ok:
        state.metrics.note_head(report.head_seq, report.head_hash)
        if report.head_seq:
            # a signed head outside the database: `custodes audit verify` catches a removed tail with it
            try:
                written = audit_chain.write_head(state.head_file, state.trail.key, report.head_seq,
                                                 report.head_hash, datetime.fromtimestamp(state.clock(), UTC))
            except OSError as exc:  # the chain is fine; only the copy outside the database is not kept
                log.warning("could not write the signed audit head (%s)", type(exc).__name__)
                written = None
            if written is not None:
                log.info("audit head #%d %s signed %s", written["seq"], written["hash"], written["sig"])
    else:
        log.error("%s", report.describe())
    return report
