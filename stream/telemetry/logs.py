"""Structured logging: one JSON object per line, with the fields that must never be logged removed.

Every line has ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and ``message``, plus
the record's *safe* extras (``log.info("batch stored", extra={"alerts": 12})``) and ``exc`` for an
exception. :class:`RedactFilter` runs before formatting, in JSON and in plain-text mode alike:

* fields that carry monitored people's data or event content (``user``, ``user_id``, ``content``,
  ``raw``, ``value``, ``event`` …) are dropped, and their names listed under ``redacted``;
* fields that name a secret (``password``, ``token``, ``pseudonym_key``, ``database_url`` …) are masked;
* passwords inside URLs (``postgresql://user:secret@host``) are masked in the message and in every
  string extra.

Use :func:`configure` in a process's main, or pass :func:`dict_config` to a framework that sets up
logging itself (Faust/mode: ``Worker(app, logging_config=dict_config(level))``).
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["JsonFormatter", "RedactFilter", "configure", "dict_config", "sanitize"]

MASK = "********"

DROPPED_FIELDS = frozenset({
    "body", "content", "contents", "document", "email", "event", "events", "headers", "line", "lines",
    "payload", "phone", "raw", "record", "records", "record_id", "text", "user", "user_id", "user_name",
    "username", "users", "value", "values",
})
"""Extras that would carry people's data or event content: removed, never formatted."""

SECRET_MARKERS = ("password", "passwd", "secret", "token", "authorization", "cookie", "credential",
                  "api_key", "apikey", "private_key", "pseudonym_key", "database_url", "dsn", "session")
"""An extra whose (lower-cased) name contains one of these is masked."""

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s]+(?P<tail>@)", re.IGNORECASE)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_MAX_DEPTH = 6


def mask_urls(text: str) -> str:
    """``scheme://user:password@host`` -> ``scheme://user:********@host``."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", text)


def _is_secret(name: str) -> bool:
    low = name.lower()
    return any(marker in low for marker in SECRET_MARKERS)


def sanitize(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` with dropped fields removed and secrets masked, recursively."""
    if depth > _MAX_DEPTH:
        return "…"
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return mask_urls(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            if name.lower() in DROPPED_FIELDS:
                continue
            out[name] = MASK if _is_secret(name) else sanitize(item, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [sanitize(item, depth + 1) for item in value]
    if hasattr(value, "get_secret_value"):  # pydantic SecretStr / SecretBytes
        return MASK
    # Anything else (a Path, an enum, a datetime …) as text, still URL-masked.
    return mask_urls(str(value))


class RedactFilter(logging.Filter):
    """Removes and masks fields that must never be logged; never drops the record itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        redacted: list[str] = list(getattr(record, "redacted", []) or [])
        for name in list(vars(record)):
            if name in _STANDARD or name == "redacted":
                continue
            if name.lower() in DROPPED_FIELDS:
                delattr(record, name)
                redacted.append(name)
            elif _is_secret(name):
                setattr(record, name, MASK)
            else:
                setattr(record, name, sanitize(getattr(record, name)))
        if redacted:
            record.redacted = sorted(set(redacted))
        # The message: format it once, mask URL passwords, and freeze it (args already applied).
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg = mask_urls(message)
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, then the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                  .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in doc:
                doc[name] = sanitize(value) if name != "redacted" else value
        if record.exc_info and record.exc_info[0] is not None:
            doc["exc"] = mask_urls(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exc"] = mask_urls(record.exc_text)
        if record.stack_info:
            doc["stack"] = mask_urls(self.formatStack(record.stack_info))
        return orjson.dumps(doc, default=str).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Client libraries that are chatty at INFO; they log at WARNING and above unless level is debug.
QUIET_LOGGERS = ("kafka", "aiokafka")


def dict_config(level: str = "info", json: bool = True, stream: str = "ext://sys.stderr") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dict: one stream handler, the redact filter, JSON or text."""
    lvl = level.upper()
    formatter: dict[str, Any] = {"()": f"{__name__}.JsonFormatter"} if json else {"format": TEXT_FORMAT}
    quiet = "DEBUG" if lvl == "DEBUG" else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": f"{__name__}.RedactFilter"}},
        "formatters": {"custodes": formatter},
        "handlers": {
            "custodes": {
                "class": "logging.StreamHandler",
                "stream": stream,
                "formatter": "custodes",
                "filters": ["redact"],
            }
        },
        "loggers": {name: {"level": quiet} for name in QUIET_LOGGERS},
        "root": {"level": lvl, "handlers": ["custodes"]},
    }


def configure(level: str, json: bool = True) -> None:
    """Replace the root logger's handlers with one that writes redacted lines to standard error."""
    if level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError(f"unknown log level {level!r}")
    logging.root.handlers.clear()
    logging.config.dictConfig(dict_config(level, json))
    logging.captureWarnings(True)


if __name__ == "__main__":  # pragma: no cover - a quick look: python -m stream.telemetry.logs
    configure("debug")
    logging.getLogger("custodes.demo").info("hello %s", "world", extra={"alerts": 3, "user": "alice"})
    sys.exit(0)
