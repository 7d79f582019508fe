"""Alerts shown outside the review app (``custodes alerts``, ``custodes replay``): pseudonymised and
masked unless the operator reveals them for a stated reason, and then recorded.

By default a shown alert has no ``subject``; it has the same keyed ``pseudonym`` the review app shows
(:mod:`stream.privacy.pseudonym`), and its title, explanation, facts and evidence are masked as the review app
masks them without a reveal (:func:`detectors.masking.shown_alert`). With ``--reveal --reason TEXT``
the raw user id and the masked values are shown, and the disclosure is recorded first, by the recorder
the command passes in (``stream.cli`` passes ``review.cli.record_disclosure``, which appends to the
review audit trail): without a recorder, or if recording fails, nothing is revealed.

The stream package does not import the review app: the CLI wires the recorder in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from detectors.masking import shown_alert
from stream.contract.settings import Settings
from stream.privacy.pseudonym import Pseudonymiser, load_key


@dataclass(frozen=True)
class Disclosure:
    """One use of ``--reveal``: which command, why, and what it showed."""

    command: str
    """``alerts`` or ``replay``."""
    reason: str
    alert_ids: tuple[str, ...]
    """The alerts shown (for ``alerts``: stored alert ids; for ``replay``: the ids of the offline run)."""
    stored: bool
    """Whether ``alert_ids`` are alerts in the store (``custodes alerts``) or only in an offline output."""
    subjects: tuple[str | None, ...] = ()
    """The monitored person each of ``alert_ids`` is about (``alerts``), for the review events the
    recorder emits, so reviewer_watch sees an operator's reveals as it sees a reviewer's; empty when
    not known."""


Recorder = Callable[[Settings, Disclosure], None]
"""Records a disclosure durably, or raises (ValueError for a reason it refuses, e.g. too short)."""


class NotRecorded(Exception):
    """A reveal that could not be recorded: nothing may be shown."""


def record(settings: Settings, disclosure: Disclosure, recorder: Recorder | None) -> None:
    if not disclosure.reason.strip():
        raise NotRecorded("--reveal needs --reason TEXT (it goes into the audit trail)")
    if recorder is None:
        raise NotRecorded("--reveal needs the review app installed: its audit trail records every reveal")
    try:
        recorder(settings, disclosure)
    except ValueError as exc:
        raise NotRecorded(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any failure to record means no reveal
        raise NotRecorded(f"the reveal could not be recorded ({type(exc).__name__}); nothing was shown") from None


def pseudonymiser(settings: Settings) -> Pseudonymiser:
    return Pseudonymiser(load_key(settings))


def shown(alert: Mapping[str, Any], pseudo: Pseudonymiser, reveal: bool) -> dict[str, Any]:
    """A stored or serialised alert as the operator sees it: ``pseudonym`` always; ``subject`` (the raw
    user id) and unmasked text, facts and evidence only when ``reveal``."""
    out = shown_alert(alert, reveal)
    subject = out.pop("subject", None)
    out["pseudonym"] = pseudo(str(subject)) if subject is not None else None
    out["subject"] = subject if reveal else None
    return out


def shown_all(alerts: Iterable[Mapping[str, Any]], pseudo: Pseudonymiser, reveal: bool) -> list[dict[str, Any]]:
    return [shown(a, pseudo, reveal) for a in alerts]
