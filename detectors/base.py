"""The detector interface.

A detector gets the events of one subject (user) in a batch, its own state for that subject and a
clock, and returns its new state and any alerts. State is a JSON value (dicts, lists, numbers,
strings) holding counts, sketches or running statistics, never a list of events; ``None`` means
"no state" (a new subject, or state that has expired and should be deleted).

A detector may update the ``state`` it is given in place and return it (the engine passes each detector
its own part of the subject's state and keeps what comes back); a caller that still needs the state as
it was must copy it first (``orjson.loads(orjson.dumps(state))``).

A detector may declare which events it acts on (:meth:`Detector.needs`); the engine then passes it only
those, still in arrival order, so it sees the same subsequence of a subject's events however they are
batched, and does not call it at all for a batch with none of them (see :attr:`Detector.watermark`).
"""

from __future__ import annotations

import dataclasses
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from .alert import Alert
from .event import EVIDENCE_FIELDS, Event
from .reference import Reference, ReferenceHolder, as_holder

Clock = Callable[[], float]
"""Returns "now" as POSIX seconds. The worker passes the wall clock; replay may pass a fixed time."""

SNAPSHOT_FIELDS = EVIDENCE_FIELDS
"""Derived from Event's annotations (``evidence``). Not ``object_id`` nor ``identity_alias``: a document's
URL or a person's UPN would need masking in the review app (review/privacy.py), and the alert's subject
and facts already say who and what."""
SNAPSHOT_STR_MAX = 256
SNAPSHOT_IDS_MAX = 20


_snapshot_values = operator.attrgetter(*SNAPSHOT_FIELDS)


def snapshot(event: Event) -> dict[str, Any]:
    """A bounded copy of an event for an alert's evidence (long strings cut, few record ids)."""
    out: dict[str, Any] = {}
    for name, value in zip(SNAPSHOT_FIELDS, _snapshot_values(event)):  # noqa: B905 - same length
        if value is None:
            continue
        if isinstance(value, str) and len(value) > SNAPSHOT_STR_MAX:
            value = value[:SNAPSHOT_STR_MAX] + "…"
        out[name] = value
    if event.record_ids:
        out["record_ids"] = list(event.record_ids[:SNAPSHOT_IDS_MAX])
        if len(event.record_ids) > SNAPSHOT_IDS_MAX:
            out["record_ids_omitted"] = len(event.record_ids) - SNAPSHOT_IDS_MAX
    if event.media:
        out["media"] = [{k: m.get(k) for k in ("type", "name") if k in m} for m in event.media[:5]]
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Needs:
    """The events a detector acts on: of one of ``kinds`` (None: of any kind) with every attribute
    named in ``fields`` set (not None; ``("lat", "lon")``: located events). Any other event must leave
    its state and alerts unchanged (except for a :attr:`Detector.watermark` detector's watermark)."""

    kinds: frozenset[str] | None = None
    fields: tuple[str, ...] = ()

    def wants(self, event: Event) -> bool:
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        return all(getattr(event, f) is not None for f in self.fields)


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """Knobs every detector has. Subclasses add their own (time units in the names: ``window_s``)."""

    enabled: bool = True


class Detector(ABC):
    id: ClassVar[str]
    """Matches the module's file name (``detectors/bulk_export/`` -> ``bulk_export``)."""
    version: ClassVar[int] = 1
    summary: ClassVar[str]
    """What it catches, in one line, for ``custodes detectors`` and the docs."""
    Config: ClassVar[type[DetectorConfig]] = DetectorConfig
    watermark: ClassVar[bool] = False
    """True when the detector's event-time watermark (the newest event time it has seen) advances with
    every event of the subject, the ones it does not need included (:class:`~detectors.suppression.RuleDetector`).
    The engine then also calls it for a batch with none of its events while it holds state for the
    subject, with no events and ``top`` (the batch's newest event time), and gives it, per event it
    does get, the newest event time of the batch so far (``marks``). Without it, a batch with none of
    its events is skipped."""

    def __init__(
        self, config: DetectorConfig | None = None, reference: ReferenceHolder | Reference | None = None
    ) -> None:
        self.config = config if config is not None else self.Config()
        self.holder = as_holder(reference)
        """Reference data; read ``self.ref`` (the holder's current snapshot) once per batch."""

    @property
    def ref(self) -> Reference:
        return self.holder.current

    @classmethod
    def configure(
        cls, knobs: Mapping[str, Any], reference: ReferenceHolder | Reference | None = None
    ) -> Detector:
        """Build from a config mapping; unknown knobs and wrong types are errors, not ignored."""
        fields = {f.name: f for f in dataclasses.fields(cls.Config)}
        unknown = set(knobs) - set(fields)
        if unknown:
            raise ValueError(f"detector {cls.id}: unknown setting(s) {sorted(unknown)}")
        values = {}
        for name, value in knobs.items():
            default = getattr(cls.Config(), name)
            values[name] = _coerce(cls.id, name, value, default)
        return cls(cls.Config(**values), reference)

    def needs(self) -> Needs | None:
        """The events this detector acts on (from its configuration; the engine asks once). None, the
        default: every event, and the engine calls it for every batch and every tick. Otherwise the
        engine passes it only those events and skips it for a batch without any (unless
        :attr:`watermark` and it holds state) and for a tick (no events) while it holds no state."""
        return None

    def process_relevant(
        self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock,
        marks: Sequence[float] | None = None, top: float | None = None,
    ) -> tuple[Any | None, list[Alert]]:
        """What the engine calls: :meth:`process` of the events :meth:`needs` selected from a batch.
        ``marks`` (when the batch held other events too) gives per event the newest event time of the
        whole batch up to and including it; ``top`` is the whole batch's newest event time (None on a
        tick). Only a :attr:`watermark` detector needs them; the default ignores them."""
        return self.process(subject, events, state, clock)

    @abstractmethod
    def process(
        self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
    ) -> tuple[Any | None, list[Alert]]:
        """Events are this subject's, in arrival order (not necessarily event-time order). May update
        ``state`` in place and return it."""


def _coerce(detector: str, name: str, value: Any, default: Any) -> Any:
    where = f"detector {detector}: setting {name}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false")
        return value
    if isinstance(default, int | float) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number")
        if value < 0:
            raise ValueError(f"{where} must not be negative")
        return type(default)(value) if isinstance(default, float) else value
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} must be a table")
        merged = dict(default)
        for k, v in value.items():
            if k in default:
                merged[k] = _coerce(detector, f"{name}.{k}", v, default[k])
            else:
                merged[k] = v
        return merged
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where} must be a list")
        return tuple(value)
    return value
