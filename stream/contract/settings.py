"""Settings: one typed, frozen model, read from a TOML file and ``CUSTODES_*`` environment variables.

Precedence: explicit overrides (CLI flags) > environment > the config file > defaults. The config file
is ``$CUSTODES_CONFIG`` or ``config/custodes.toml`` in the checkout. Secrets (the database URL's
password, the pseudonym and audit keys) are never printed: ``describe()`` masks them.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from stream.contract.limits import Limits

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "custodes.toml"
ENV_PREFIX = "CUSTODES_"


class Topics(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    events: str = "custodes-audit-events"
    rerouted: str = "custodes-audit-events-by-user"
    """Events that arrived on a partition other than their user's are re-keyed through this topic."""
    dead_letter: str = "custodes-dead-letter"
    alerts: str = "custodes-alerts"
    alerts_dead_letter: str = "custodes-alerts-dead-letter"
    """Alerts the store refuses (a permanent error for that alert, not an outage), with the reason."""
    activity_days: str = "custodes-activity-days"
    """Per person per UTC day, absolute activity counts by kind (the person story chart), for the sink."""
    sigma_groups: str = "custodes-sigma-groups"
    """Records of Sigma correlations grouped by something other than the person, re-keyed by group."""


class Rules(BaseModel):
    """``[rules]``: Sigma rules (docs/rules.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = True
    dir: Path | None = REPO_CONFIG.parent / "rules"
    """The site's rule directory (``*.yml`` / ``*.yaml``, searched recursively; ``*.test.yml`` are tests)."""
    dirs: tuple[Path, ...] = ()
    """More rule directories, loaded after ``dir`` (e.g. a checkout of SigmaHQ rules)."""
    pipeline: Path | None = REPO_CONFIG.parent / "sigma-pipeline.yml"
    """pySigma processing pipeline mapping Sigma taxonomy field names to the canonical event."""
    disabled: tuple[str, ...] = ()
    """Rule ids (or names) not to run."""
    levels: dict[str, Literal["informational", "low", "medium", "high", "critical"]] = Field(default_factory=dict)
    """Rule id (or name) -> level, overriding the rule's own."""
    level_scores: dict[str, float] = Field(default_factory=dict)
    """Alert score per level (defaults: informational 15, low 30, medium 50, high 75, critical 90)."""
    suppress_s: int = Field(3600, ge=0)
    grace_s: int = Field(3600, ge=0)
    max_groups: int = Field(64, ge=1, le=4096)
    placeholders: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Site lists for the ``expand`` modifier (``%name%``), besides the reference-data ones."""

    @property
    def directories(self) -> tuple[Path, ...]:
        return ((self.dir,) if self.dir is not None else ()) + tuple(self.dirs)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    broker: str | None = None
    """``host:port[,host:port]`` of a Kafka cluster. None: ``custodes run`` starts an embedded broker."""
    database_url: SecretStr | None = None
    """SQLAlchemy URL. None: SQLite under ``data_dir``. PostgreSQL: ``postgresql+psycopg://…``."""
    data_dir: Path = Path("custodes-data")
    app_id: str = "custodes"
    topics: Topics = Topics()
    partitions: int = Field(4, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1, le=7)
    retention_days: int = Field(730, ge=1)
    """How long any monitoring data is kept (events, alerts, state): two years by default."""
    retention_interval_s: int = Field(3600, ge=0)
    """How often the sink runs the retention job on the store (0: never; use `custodes retention run`)."""
    state_sweep_interval_s: int = Field(600, ge=1)
    """How often the worker deletes detector state whose newest event is past the window."""
    max_future_s: int = Field(86_400, ge=0)
    """Events dated further than this ahead of now are dead-lettered (``timestamp_in_future``)."""
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    web_bind: str = "127.0.0.1"
    worker_port: int = Field(6066, ge=0, le=65535)
    """The worker's /metrics, /health and /ready (0: no web server)."""
    sink_port: int = Field(6067, ge=0, le=65535)
    review_port: int = Field(8080, ge=0, le=65535)
    ingest_batch_events: int = Field(500, ge=1, le=100_000)
    """``custodes ingest`` packs up to this many events of one partition into one Kafka message."""
    ingest_batch_max_bytes: int = Field(900_000, ge=1024, le=64 << 20)
    """... and starts a new message before one would pass this many bytes: keep it under the broker's
    ``message.max.bytes`` (1,048,588 by default). A single event larger than this is dead-lettered
    (``event_too_large``) instead of making the broker refuse its message."""
    sink_batch_max: int = Field(500, ge=1)
    batch_max_events: int = Field(20_000, ge=1, le=1_000_000)
    """The worker gathers messages into a micro-batch of up to this many events before running the
    detectors (each user's events in it are run together, and each user's state is read and written
    once per micro-batch); replay does the same. A micro-batch's events, documents and outcome are held
    until it is delivered: 5,000 took ~100 MB off the worker's peak RSS (10,000 people) and was not
    slower, but replay's person_risk and third_party_transfer alerts depend on the cut (bench/README.md,
    "State and memory"), so the default stays."""
    batch_max_wait_s: float = Field(0.05, ge=0.0, le=10.0)
    """A micro-batch is processed at the latest this long after its first message arrived..."""
    batch_catch_up_wait_s: float = Field(1.0, ge=0.0, le=60.0)
    """...unless the broker holds more input than the worker has gathered (a backlog): then it may gather
    for up to this long (and ``batch_max_events``), which costs less per event. Set it to
    ``batch_max_wait_s`` or less to turn this off."""
    fetch_max_wait_s: float = Field(0.1, ge=0.005, le=1.5)
    """How long the broker may hold the worker's fetch open waiting for data (faust's fixed 1.5 s made
    the worker take in ~1.8 s of input at a time under steady load)."""
    producer_batch_max_bytes: int = Field(1_000_000, ge=16_384, le=64 << 20)
    """The largest record batch the worker's producer builds per partition. Large, so a micro-batch's
    state writes go out in a few requests (the producer has one request in flight per broker);
    must not exceed the broker's ``message.max.bytes`` (1,048,588 by default)."""
    live_state_max_bytes: int = Field(0, ge=0, le=1 << 40)
    """Memory for the most recently active people's decoded states, kept between micro-batches so a
    person's next micro-batch skips decoding their stored state (stream/worker/live.py; estimated at 6
    bytes per byte of a state's JSON: 32 MiB keeps ~2,900 states of 1.9 KB, ~40 MB of RSS). Eviction
    writes nothing (the table holds every state's bytes). 0, the default, keeps none: measured, the
    decodes saved cost less than CPython's cyclic GC spends rescanning the kept objects (replay with
    micro-batches of 1,000 events over 5,000 people took 1.4x the CPU with 32 MiB; bench/README.md,
    "State and memory", session 7)."""
    dead_letter_max_bytes: int = Field(262_144, ge=1024, le=900_000)
    """A dead letter keeps at most this many bytes of the bad input (header ``custodes.truncated`` gives
    the original size when cut), so bad input of any size fits the broker's message limit."""
    dedupe_events: int = Field(64, ge=0, le=4096)
    """Per user, remember digests of this many recent events (of each whole canonical document, see
    stream.worker.pipeline.content_digest) so a re-sent event is not counted twice (0: no dedupe)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    pseudonym_key: SecretStr | None = None
    audit_key: SecretStr | None = None
    """Key of the review app's audit chain (HMAC-SHA256). None: generated once into ``data_dir/audit.key``
    (mode 0600). Keep it out of the database (an environment secret or that file): whoever holds it
    could rewrite the chain."""
    reference_dir: Path | None = REPO_CONFIG.parent / "reference"
    """Reference data files (staff.jsonl, cases.jsonl, …); see docs/detectors.md."""
    reference_reload_s: int = Field(10, ge=1)
    reference_topic_prefix: str = "custodes-ref-"
    """Compacted topics ``<prefix>staff``, ``<prefix>case`` … carry updates to the reference data."""
    activities_file: Path | None = REPO_CONFIG.parent / "activities.toml"
    """The activity table (docs/sources.md): custodes.activity for events that carry none, from their ECS
    event.category/type/action and dataset. None: such events stay ``other``."""
    org_domains: tuple[str, ...] = ()
    """The organisation's own mail domains (sub-domains included): readers mark shares and forwarding to
    any other domain as external. Empty: ``detectors.third_party_transfer.internal_domains``."""
    limits: dict[str, int] = Field(default_factory=dict)
    detectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    rules: Rules = Rules()

    @field_validator("org_domains", mode="before")
    @classmethod
    def _domains(cls, value: Any) -> Any:
        """``CUSTODES_ORG_DOMAINS=a.example,b.example``; domains lower-cased."""
        if isinstance(value, str):
            value = [d for d in value.split(",") if d.strip()]
        if isinstance(value, list | tuple):
            return tuple(d.strip().lower().lstrip("@") if isinstance(d, str) else d for d in value)
        return value

    @field_validator("limits")
    @classmethod
    def _known_limits(cls, value: dict[str, int]) -> dict[str, int]:
        known = set(Limits.__dataclass_fields__)
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown limit(s) {sorted(unknown)}; known: {sorted(known)}")
        return value

    @property
    def internal_domains(self) -> tuple[str, ...]:
        """``org_domains``, else the third-party-transfer detector's ``internal_domains``."""
        if self.org_domains:
            return self.org_domains
        domains = self.detectors.get("third_party_transfer", {}).get("internal_domains", ())
        return tuple(d for d in domains if isinstance(d, str))

    @property
    def retention_s(self) -> int:
        return self.retention_days * 86_400

    @property
    def event_limits(self) -> Limits:
        return Limits(**self.limits)

    @property
    def db_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'custodes.db').resolve()}"

    def describe(self) -> dict[str, Any]:
        """The settings as a dict that is safe to print or log: secrets masked."""
        from sqlalchemy.engine import make_url

        out = self.model_dump(mode="json", exclude={"database_url", "pseudonym_key", "audit_key"})
        out["database_url"] = make_url(self.db_url).render_as_string(hide_password=True)
        out["pseudonym_key"] = "********" if self.pseudonym_key else None
        out["audit_key"] = "********" if self.audit_key else None
        return out


class SettingsError(ValueError):
    pass


_ENV_FIELDS = {
    name: name.upper()
    for name in Settings.model_fields
    if name not in {"topics", "limits", "detectors", "rules"}
}


def load(path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
         **overrides: Any) -> Settings:
    """Read the config file, then ``CUSTODES_*`` variables, then ``overrides`` (None values ignored)."""
    env = dict(os.environ) if env is None else env
    file = Path(path) if path else Path(env.get("CUSTODES_CONFIG", "") or REPO_CONFIG)
    data: dict[str, Any] = {}
    if file.exists():
        with file.open("rb") as fh:
            try:
                raw = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"{file}: {exc}") from None
        data.update(raw.get("custodes", {}))
        for section in ("topics", "limits", "detectors", "rules"):
            if section in raw:
                data[section] = raw[section]
        extra = set(raw) - {"custodes", "topics", "limits", "detectors", "rules"}
        if extra:
            raise SettingsError(f"{file}: unknown section(s) {sorted(extra)}")
    elif path:
        raise SettingsError(f"config file {file} does not exist")
    for name, suffix in _ENV_FIELDS.items():
        value = env.get(ENV_PREFIX + suffix)
        if value not in (None, ""):
            data[name] = value
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None
