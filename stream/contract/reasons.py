"""Why an event is rejected: the bounded set of reasons (safe as a metric label) and the exception
that carries one, with a detail for people that names the field but never echoes its value."""

from __future__ import annotations

import re

REASONS = (
    "not_utf8",
    "invalid_json",
    "not_an_object",
    "event_too_large",
    "too_deeply_nested",
    "missing_user",
    "missing_timestamp",
    "bad_timestamp",
    "timestamp_without_timezone",
    "timestamp_in_future",
    "wrong_type",
    "bad_value",
    "oversized_field",
    "unsupported_version",
    "detector_failed",
    "unroutable",
    "control_character",
)
"""Why an event was dead-lettered. Used as the ``reason`` metric label and dead-letter header."""


class Invalid(Exception):
    """An event that cannot be processed. ``reason`` is one of REASONS; ``detail`` is for people."""

    def __init__(self, reason: str, detail: str, field: str | None = None) -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field if field is not None else _field_of(detail)
        """The field path the problem is at (``user.id``, ``Parameters[2].Value``), when known."""


_FIELD_AT_START = re.compile(r"^(?:an item of )?(@timestamp|[A-Za-z_][A-Za-z0-9_@-]*(?:\.[A-Za-z0-9_@-]+)+)\b")


def _field_of(detail: str) -> str | None:
    """The dotted field path a detail starts with (``user.id must be a string``), else None."""
    match = _FIELD_AT_START.match(detail)
    return match.group(1) if match else None


