"""stream.telemetry.logs: one JSON object per line, and fields that must never be logged are dropped or masked."""

from __future__ import annotations

import io
import logging
import logging.config
import subprocess
import sys

import orjson
import pytest
from pydantic import SecretStr

from stream.telemetry import logs

from .common import REPO


@pytest.fixture
def capture():
    """A handler like the one configure() installs, writing to a buffer; restores the root logger."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RedactFilter())
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG)

    def lines() -> list[dict]:
        return [orjson.loads(line) for line in buffer.getvalue().splitlines()]

    yield lines
    root.handlers[:], level = saved
    root.setLevel(level)


def test_a_record_comes_out_as_one_json_object(capture):
    logging.getLogger("custodes.sink").info("stored %d alerts", 12, extra={"batch": 3, "topic": "alerts"})
    [line] = capture()
    assert set(line) == {"ts", "level", "logger", "message", "batch", "topic"}
    assert line["level"] == "info" and line["logger"] == "custodes.sink"
    assert line["message"] == "stored 12 alerts"
    assert line["batch"] == 3 and line["topic"] == "alerts"
    assert line["ts"].endswith("Z") and len(line["ts"]) == len("2026-03-02T09:00:00.000Z")


def test_people_data_and_content_are_dropped(capture):
    logging.getLogger("custodes").warning(
        "bad event", extra={"user": "alice", "user_id": "u-42", "content": "Dear Bob…", "raw": b"{...}",
                            "reason": "missing_user", "context": {"email": "a@example.org", "line": 4}},
    )
    [line] = capture()
    text = orjson.dumps(line).decode()
    for secret in ("alice", "u-42", "Dear Bob", "a@example.org"):
        assert secret not in text
    assert line["redacted"] == ["content", "raw", "user", "user_id"]
    assert line["reason"] == "missing_user"
    assert line["context"] == {}  # nested people data and content are dropped too


def test_secrets_are_masked_in_extras_and_messages(capture):
    url = "postgresql+psycopg://custodes:hunter2@db:5432/custodes"
    logging.getLogger("custodes").error(
        "cannot connect to %s", url,
        extra={"database_url": url, "api_token": "abc", "pseudonym_key": SecretStr("k"), "target": url,
               "settings": {"password": "hunter2", "port": 5432}},
    )
    [line] = capture()
    assert "hunter2" not in orjson.dumps(line).decode()
    assert line["message"] == "cannot connect to postgresql+psycopg://custodes:********@db:5432/custodes"
    assert line["database_url"] == line["api_token"] == line["pseudonym_key"] == logs.MASK
    assert line["target"] == "postgresql+psycopg://custodes:********@db:5432/custodes"
    assert line["settings"] == {"password": logs.MASK, "port": 5432}


def test_exceptions_are_included_and_masked(capture):
    try:
        raise RuntimeError("login failed for postgresql://u:pw123@db/x")
    except RuntimeError:
        logging.getLogger("custodes").exception("store unavailable")
    [line] = capture()
    assert line["level"] == "error"
    assert "RuntimeError" in line["exc"] and "pw123" not in line["exc"]


def test_a_bad_format_string_does_not_lose_the_record(capture):
    logging.getLogger("custodes").info("%d items", "not a number")
    [line] = capture()
    assert "unformattable" in line["message"]


def test_configure_writes_json_lines_to_stderr():
    code = (
        "import logging; from stream.telemetry import logs; logs.configure('info'); "
        "logging.getLogger('custodes.worker').info('started', extra={'partitions': 4, 'user': 'bob'}); "
        "logging.getLogger('custodes.worker').debug('hidden'); "
        "logging.getLogger('kafka.conn').info('chatty client')"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=True)
    lines = [orjson.loads(line) for line in proc.stderr.splitlines()]
    assert len(lines) == 1, proc.stderr  # debug below the level, kafka client quiet below WARNING
    assert lines[0]["message"] == "started" and lines[0]["partitions"] == 4
    assert lines[0]["redacted"] == ["user"] and "bob" not in proc.stderr


def test_configure_text_mode_still_redacts():
    code = (
        "import logging; from stream.telemetry import logs; logs.configure('debug', json=False); "
        "logging.getLogger('custodes').info('url %s', 'postgresql://a:secretpw@h/db')"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=True)
    assert "custodes url postgresql://a:********@h/db" in proc.stderr and "secretpw" not in proc.stderr
    with pytest.raises(ValueError):
        logs.configure("loud")


def test_dict_config_is_accepted_by_logging():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in logs.QUIET_LOGGERS}
    try:
        logging.config.dictConfig(logs.dict_config("warning"))  # what the Faust worker would be given
        [handler] = root.handlers
        assert isinstance(handler.formatter, logs.JsonFormatter)
        assert any(isinstance(f, logs.RedactFilter) for f in handler.filters)
        assert root.level == logging.WARNING
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name, lvl in quiet.items():
            logging.getLogger(name).setLevel(lvl)
