"""PostgreSQL for end-to-end tests: a private throwaway cluster, or the server in ``CUSTODES_TEST_POSTGRES_URL``.

Fixtures: ``postgres_server`` (session), ``postgres_url`` (function: a fresh database per test) and
``database_url`` (function, parametrised ``sqlite`` / ``postgresql``).

The private cluster uses Debian's binaries (``/usr/lib/postgresql/<ver>/bin``; ``initdb``/``pg_ctl`` on PATH
also work, or ``CUSTODES_PG_BINDIR``), lives in a temporary directory, listens on 127.0.0.1 only on a free
port, keeps its unix socket in that directory, trusts every local connection and runs with fsync=off.
As root it runs as the ``postgres`` system user (initdb refuses to run as root).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .ports import HOST, free_port
from .services import service_unavailable, tail

SUPERUSER = "postgres"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class PostgresError(RuntimeError):
    """The throwaway cluster could not be created, started or stopped."""


def find_pg_bindir() -> Path | None:
    """Directory holding ``initdb`` and ``pg_ctl``: $CUSTODES_PG_BINDIR, newest Debian version, or PATH."""
    candidates: list[Path] = []
    if os.environ.get("CUSTODES_PG_BINDIR"):
        candidates.append(Path(os.environ["CUSTODES_PG_BINDIR"]))

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        service_unavailable("psycopg (3) is not installed: pip install -e '.[test]'")
    return psycopg


class PostgresServer:
    """Where a PostgreSQL server is and how to make/drop per-test databases on it."""

    def __init__(
        self, *, host: str, port: int, user: str, password: str | None = None, maintenance_db: str = "postgres"
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.maintenance_db = maintenance_db
        self.last_start_seconds: float | None = None

    def url(self, database: str | None = None) -> str:
        """SQLAlchemy URL (``postgresql+psycopg://USER@HOST:PORT/DB``) for ``database`` (default: maintenance db)."""
        from sqlalchemy.engine import URL

        return URL.create(
            "postgresql+psycopg",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=database or self.maintenance_db,
        ).render_as_string(hide_password=False)

    def connect(self, database: str | None = None, **kwargs: Any) -> Any:
        """A plain psycopg connection (autocommit) -- for harness chores, not for code under test."""
        psycopg = _psycopg()
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.maintenance_db,
            autocommit=True,
            connect_timeout=10,
            **kwargs,
        )

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its name."""
        name = name or f"custodes_{uuid.uuid4().hex[:12]}"
        if not _DB_NAME.match(name):
            raise ValueError(f"unsafe database name {name!r}")
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whatever the test left connected to it."""
        if not _DB_NAME.match(name):
            raise ValueError(f"unsafe database name {name!r}")
        with self.connect() as conn:
            if conn.info.server_version >= 130000:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')

    def close(self) -> None:
        """Nothing to stop for an external server."""

    @classmethod
    def from_url(cls, url: str) -> PostgresServer:
        """An existing server, e.g. ``CUSTODES_TEST_POSTGRES_URL=postgresql://user:pw@host:5432/postgres``.

        Per-test databases are created from the URL's database (default ``postgres``), so the user needs
        CREATEDB.
        """
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise ValueError(f"CUSTODES_TEST_POSTGRES_URL is not a PostgreSQL URL: {parsed!r}")
        return cls(
            host=parsed.host or HOST,
            port=parsed.port or 5432,
            user=parsed.username or SUPERUSER,
            password=parsed.password,
            maintenance_db=parsed.database or "postgres",
        )


class PrivatePostgres(PostgresServer):
    """A throwaway cluster in its own temporary directory (initdb + pg_ctl), stopped and deleted by close()."""

    def __init__(self, bindir: Path) -> None:
        super().__init__(host=HOST, port=0, user=SUPERUSER)
        self.bindir = Path(bindir)
        self.basedir: Path | None = None
        self._started = False
        self._closed = False
        self._run_as: list[str] = []
        self._reaper: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        assert self.basedir is not None
        return self.basedir / "data"

    @property
    def log_path(self) -> Path:
        assert self.basedir is not None
        return self.basedir / "postgres.log"

    def _prepare_user(self) -> tuple[int, int] | None:
        """As root, run the binaries as the `postgres` system user; returns its (uid, gid) or None."""
        if os.geteuid() != 0:
            return None
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            service_unavailable("running as root and there is no `postgres` system user to run initdb as")
        runuser = shutil.which("runuser")
        if runuser:
            self._run_as = [runuser, "-u", "postgres", "--"]
        else:
            setpriv = shutil.which("setpriv")
            if not setpriv:
                service_unavailable("running as root without `runuser` or `setpriv` to drop to the postgres user")
            self._run_as = [setpriv, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--"]
        return pw.pw_uid, pw.pw_gid

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._run_as, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.basedir,  # a directory the postgres user can enter
            start_new_session=True,  # a Ctrl-C in the terminal must not hit the postmaster before our cleanup
        )

    def start(self, *, attempts: int = 3) -> None:
        began = time.monotonic()
        ids = self._prepare_user()
        # Not under pytest's basetemp: that is mode 0700 and owned by us, so the postgres user could not enter.
        self.basedir = Path(tempfile.mkdtemp(prefix="custodes-pg-"))
        if ids:
            os.chown(self.basedir, *ids)
        self._start_reaper()
        initdb = self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.data_dir),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        if initdb.returncode != 0:
            raise PostgresError(f"initdb failed (exit {initdb.returncode}):\n{initdb.stdout}{initdb.stderr}")
        for attempt in range(1, attempts + 1):
            self.port = free_port()
            self._write_config()
            proc = self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
                "-w", "-t", "60", "start",
            )  # fmt: skip
            if proc.returncode == 0:
                self._started = True
                break
            log = tail(self.log_path)
            if attempt == attempts or "could not bind" not in log:
                raise PostgresError(
                    f"pg_ctl start failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}\n"
                    f"--- tail of {self.log_path} ---\n{log}"
                )
        self.last_start_seconds = time.monotonic() - began

    def _start_reaper(self) -> None:
        """If this test process dies without running finalizers (SIGKILL, SIGTERM, a CI timeout), stop the
        postmaster (SIGQUIT: immediate shutdown) and delete the cluster. close() ends the reaper first."""
        script = (
            'while kill -0 "$1" 2>/dev/null; do sleep 1; done; '
            'pid=$(head -n 1 "$2/data/postmaster.pid" 2>/dev/null) && kill -QUIT "$pid" 2>/dev/null; '
            'sleep 3; rm -rf "$2"'
        )
        self._reaper = subprocess.Popen(
            ["sh", "-c", script, "custodes-pg-reaper", str(os.getpid()), str(self.basedir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _write_config(self) -> None:
        settings = {
            "listen_addresses": f"'{HOST}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.basedir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
            "log_min_error_statement": "panic",  # tests provoke errors on purpose; keep the log readable
        }
        # Later settings win: rewrite our block on each attempt.
        conf = self.data_dir / "postgresql.conf"
        marker = "# --- custodes test harness ---\n"
        base = conf.read_text().split(marker)[0]
        conf.write_text(base + marker + "".join(f"{k} = {v}\n" for k, v in settings.items()))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reaper is not None and self._reaper.poll() is None:
            self._reaper.kill()
            self._reaper.wait()
        if self.basedir is None:
            return
        if self._started:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop",
                          timeout=60)  # fmt: skip
        shutil.rmtree(self.basedir, ignore_errors=True)


# -- fixtures -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> PostgresServer:
    """A PostgreSQL server for the session: ``CUSTODES_TEST_POSTGRES_URL`` if set, else a private cluster."""
    external = os.environ.get("CUSTODES_TEST_POSTGRES_URL")
    if external:
        return PostgresServer.from_url(external)
    _psycopg()
    bindir = find_pg_bindir()
    if bindir is None:
        service_unavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl, postgres) under /usr/lib/postgresql/*/bin or on "
            "PATH; install the `postgresql` package or set CUSTODES_TEST_POSTGRES_URL"
        )
    server = PrivatePostgres(bindir)
    request.addfinalizer(server.close)  # before start(): a failed or interrupted start is cleaned up too
    atexit.register(server.close)
    server.start()
    return server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for this test: ``postgresql+psycopg://USER@127.0.0.1:PORT/DBNAME``."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test runs twice: on a SQLite file in ``tmp_path`` and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/custodes.db"
    return request.getfixturevalue("postgres_url")
