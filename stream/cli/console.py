"""What the command line shows a person: one-line errors instead of tracebacks, and tables.

Every failure the CLI can meet with a broker, a database or a file becomes one line that says what
failed, where (the broker address, the database URL with its password hidden, the file), and what
to check. ``custodes --debug`` shows the traceback as well.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

BROKER_CONNECT_TIMEOUT_S = 3.0
"""How long a command waits for a TCP connection to a bootstrap broker before saying it is unreachable."""


class Unreachable(click.ClickException):
    """A service the command needs cannot be reached; the message says which and what to check."""


def _addresses(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for item in bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise click.ClickException(f"broker address {item!r} is not host:port (check CUSTODES_BROKER / --broker)")
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise click.ClickException("no broker address given (set CUSTODES_BROKER or --broker)")
    return out


def check_broker(bootstrap: str, timeout_s: float = BROKER_CONNECT_TIMEOUT_S) -> None:
    """Fail fast, in one line, when no bootstrap broker accepts a TCP connection.

    The Kafka clients retry for 30 s or more and then raise a timeout with a traceback; a plain
    connection attempt answers within ``timeout_s``. One reachable broker is enough (the client
    learns the others from it)."""
    problems = []
    for host, port in _addresses(bootstrap):
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return
        except OSError as exc:
            problems.append(f"{host}:{port} ({_why(exc)})")
    raise Unreachable(
        f"cannot reach the Kafka broker at {', '.join(problems)}: check CUSTODES_BROKER (or --broker) "
        "and that the broker is running and listening on that address"
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "no answer"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno == errno.ECONNREFUSED:
            return "connection refused"
        return exc.strerror or str(exc)
    return str(exc) or type(exc).__name__


def explain(exc: BaseException, *, broker: str | None = None, database: str | None = None) -> str | None:
    """One line for an error the CLI knows how to describe, else None (a bug: show the traceback).

    ``database`` must already have its password hidden."""
    try:
        from sqlalchemy.exc import DBAPIError, OperationalError
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        DBAPIError = OperationalError = ()  # type: ignore[assignment]  # noqa: N806
    from kafka.errors import KafkaError, KafkaTimeoutError

    if isinstance(exc, KafkaTimeoutError) and "bootstrap" in str(exc).lower():
        where = broker or "the configured address"
        return (f"cannot reach the Kafka broker at {where}: check CUSTODES_BROKER (or --broker) and that the "
                "broker is running")
    if isinstance(exc, KafkaError):
        where = f" at {broker}" if broker else ""
        return f"the Kafka broker{where} failed the request: {_first_line(exc)} (run with --debug for details)"
    if isinstance(exc, OperationalError):
        where = database or "the configured database"
        return (f"cannot use the database at {where}: {_first_line(exc.orig or exc)}; check "
                "CUSTODES_DATABASE_URL and that the server is running (and `custodes db upgrade` has been run)")
    if isinstance(exc, DBAPIError):
        where = database or "the configured database"
        return f"the database at {where} refused the request: {_first_line(exc.orig or exc)}"
    if isinstance(exc, PermissionError):
        return f"cannot read {exc.filename or 'a file'}: permission denied"
    if isinstance(exc, IsADirectoryError):
        return f"{exc.filename} is a directory, not a file"
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename or 'a file'} does not exist"
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot use {exc.filename}: {exc.strerror or exc}"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 message``, ``2 messages``, ``1,000 messages``."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def iso(value: Any) -> str | None:
    """ISO 8601 in UTC for a datetime or POSIX seconds (every JSON the CLI writes uses this)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return datetime.fromtimestamp(float(value), UTC).isoformat()


_WIDTHS = {"time": (16, 16), "severity": (8, 8), "score": (5, 5), "status": (13, 13), "detector": (12, 26),
           "person": (18, 18), "alert id": (10, 10), "title": (20, None)}
"""(min, max) characters per column: times and pseudonyms never wrap or shrink; the title takes the rest."""

ALERT_COLUMNS = tuple(_WIDTHS)


def alerts_table(rows: Sequence[dict[str, Any]], person: Callable[[dict[str, Any]], str], *,
                 order: str = "stored", width: int | None = None) -> str:
    """Stored alerts as an aligned table with a header, one line per alert; on a terminal, long cells
    end in an ellipsis (piped to a file, titles are whole). ``time`` is when the alert was stored, or
    (``order="event"``) the time of its events.

    The table is never narrower than its fixed columns plus 20 characters of title: on a narrower
    terminal the lines run on rather than columns being squeezed or dropped."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    fixed = sum(hi for name, (_, hi) in _WIDTHS.items() if name != "title") + 2 * (len(ALERT_COLUMNS) - 1)
    width = max(width or _terminal_width(), fixed + 20)
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    for name in ALERT_COLUMNS:
        low, high = _WIDTHS[name]
        if name == "title":
            high = width - fixed  # rich would otherwise squeeze the fixed columns away
        table.add_column(name, no_wrap=True, overflow="ellipsis", justify="right" if name == "score" else "left",
                         min_width=low, max_width=high)
    when = "created_at" if order == "stored" else "ts"
    for r in rows:
        table.add_row(
            _short_time(r.get(when)), str(r.get("severity", "")), f"{float(r.get('score') or 0):.1f}",
            str(r.get("status", "")), str(r.get("detector", "")), person(r), str(r.get("id", ""))[:10],
            str(r.get("title", "")),
        )
    buf = StringIO()
    Console(file=buf, width=width, no_color=True, highlight=False, soft_wrap=False, emoji=False,
            markup=False).print(table)
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())


def _terminal_width() -> int:
    """The terminal's width; when output goes to a file or pipe, wide enough that nothing is cut."""
    import shutil
    import sys

    if not sys.stdout.isatty():
        return 1000
    return shutil.get_terminal_size((160, 24)).columns


def _short_time(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(float(value), UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def lines(items: Iterable[str]) -> str:
    return "".join(f"{i}\n" for i in items)
