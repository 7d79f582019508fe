"""The ``custodes`` command line."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from stream.cli.console import plural
from stream.contract.settings import Settings, SettingsError, load


def _formats() -> click.Choice:
    from stream.sources.files import FORMATS as KNOWN

    return click.Choice(list(KNOWN))


FORMATS = _formats()


@contextlib.contextmanager
def _input_errors():
    """A file the normalisers cannot read at all (unknown format, bad mapping file) is a clear error,
    not a traceback. (Bad records inside a readable file are dead-lettered, not errors.)"""
    from stream.sources.files import FormatError
    from stream.sources.mapping import MappingError

    try:
        yield
    except (FormatError, MappingError) as exc:
        raise click.ClickException(str(exc)) from None


class Context:
    def __init__(self, config: Path | None, overrides: dict, debug: bool = False) -> None:
        self.config = config
        self.overrides = overrides
        self.debug = debug
        self.loaded: Settings | None = None

    def settings(self, **more) -> Settings:
        try:
            settings = load(self.config, **{**self.overrides, **more})
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None
        self.loaded = settings
        return settings


class _Main(click.Group):
    """Broker, database and file failures end a command with one line saying what to check, not a
    traceback (``custodes --debug`` shows the traceback too). Anything else is a bug and is shown."""

    def invoke(self, ctx: click.Context):
        from stream.cli.console import explain

        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - translated or re-raised
            obj = ctx.obj if isinstance(ctx.obj, Context) else None
            settings = obj.loaded if obj is not None else None
            database = settings.describe()["database_url"] if settings is not None else None
            message = explain(exc, broker=settings.broker if settings else None, database=database)
            if message is None:
                raise
            if obj is not None and obj.debug:
                import traceback

                traceback.print_exc()
            raise click.ClickException(message) from None


pass_ctx = click.make_pass_decorator(Context)


def _broker(settings: Settings) -> Settings:
    """The configured broker, else the one of a ``custodes run`` on this data directory; either must
    accept a connection within a few seconds, or the command ends with one line saying so."""
    from stream.cli.console import check_broker
    from stream.cli.embedded import running_broker

    if settings.broker:
        check_broker(settings.broker)
        return settings
    found = running_broker(settings)
    if not found:
        raise click.ClickException(
            "no broker: set CUSTODES_BROKER (or --broker), or start `custodes run` first"
        )
    check_broker(found)
    settings = settings.model_copy(update={"broker": found})
    ctx = click.get_current_context(silent=True)
    if ctx is not None and isinstance(ctx.find_object(Context), Context):
        ctx.find_object(Context).loaded = settings
    return settings


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False),
              envvar="CUSTODES_CONFIG", help="Settings file (default: config/custodes.toml).")
@click.option("--broker", help="Kafka bootstrap servers host:port[,…] (env CUSTODES_BROKER).")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where SQLite and logs live (env CUSTODES_DATA_DIR).")
@click.option("--web-bind", help="Address the HTTP endpoints listen on (env CUSTODES_WEB_BIND).")
@click.option("--debug", is_flag=True, help="Show the traceback of a broker, database or file error too.")
@click.pass_context
def main(ctx: click.Context, config: Path | None, broker: str | None, data_dir: Path | None,
         web_bind: str | None, debug: bool) -> None:
    """Custodes: audit-log monitoring that flags suspicious data access and bulk exports."""
    ctx.obj = Context(config, {"broker": broker, "data_dir": data_dir, "web_bind": web_bind}, debug=debug)


@main.command()
@click.option("--demo", is_flag=True,
              help="Also stream a small demo organisation into the broker, and make a demo login.")
@click.option("--alert-burst", default=5, show_default=True,
              help="Alert lines printed per poll (every 2 s) before a summary line takes over.")
@pass_ctx
def run(ctx: Context, demo: bool, alert_burst: int) -> None:
    """Run everything: broker (embedded Tansu unless one is configured), worker, sink, review app.

    Prints where each process listens, how to log in to the review app, and one line per new alert
    (pseudonymised) while it runs."""
    import signal

    from stream.cli.embedded import Embedded

    settings = ctx.settings()
    emb = Embedded(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    failure: str | None = None
    try:
        click.echo("Starting Custodes…")
        emb.start()
        kind = "configured" if settings.broker else "embedded Tansu, in memory"
        bind = settings.web_bind
        review_up = any(c.name == "review" for c in emb.children)
        click.echo(f"  broker          {emb.broker}  ({kind})")
        click.echo(f"  store           {settings.describe()['database_url']}")
        click.echo(f"  worker metrics  http://{bind}:{settings.worker_port}/metrics")
        click.echo(f"  sink metrics    http://{bind}:{settings.sink_port}/metrics")
        if review_up:
            click.echo(f"  review app      http://{bind}:{settings.review_port}/")
            click.echo(f"  review metrics  http://{bind}:{settings.review_port}/metrics")
        click.echo(f"  logs            {emb.logs}")
        if review_up:
            for line in _login_lines(settings, demo):
                click.echo(line)
        click.echo(f"Feed events with: custodes ingest FILE…   (data dir {settings.data_dir})")
        if demo:
            from stream.synth.demo import run_demo

            demo_settings = settings.model_copy(update={"broker": emb.broker})
            threading.Thread(target=run_demo, args=(demo_settings, stop), daemon=True).start()
            click.echo("Streaming a small made-up organisation; alerts usually appear within a minute.")
        click.echo("New alerts are listed below (pseudonymised; `custodes alerts` lists them all). "
                   "Press Ctrl-C to stop.")
        feed = _alert_feed(settings, alert_burst)
        next_poll = time.monotonic()
        while not stop.wait(0.5):
            dead = emb.failed()
            if dead is not None:
                failure = f"{dead.name} exited with code {dead.proc.returncode}; see {dead.log}"
                break
            if feed is not None and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + 2.0
                for line in feed():
                    click.echo(line)
        click.echo("Stopping…")
    finally:
        stop.set()
        emb.stop()
        click.echo("Stopped.")
    if failure:
        raise click.ClickException(failure)


def _login_lines(settings: Settings, demo: bool) -> list[str]:
    """How to log in: a demo credential with --demo, else the command that creates the first account."""
    url = f"http://{settings.web_bind}:{settings.review_port}/login"
    if demo:
        from review.demo import ensure_demo_account

        name, password, _ = ensure_demo_account(settings)
        return [
            "",
            "  DEMO LOGIN (made-up data only; a new password each `run --demo`; never use it for real data)",
            f"    {url}   account: {name}   password: {password}",
            "",
        ]
    from review.accounts import count_accounts

    if count_accounts(settings) == 0:
        return ["", "  No review account yet. Create the first one (it asks for a password):",
                "    custodes users add YOUR-NAME --role admin", f"  then log in at {url}", ""]
    return [f"  log in at {url} with your review account"]


def _alert_feed(settings: Settings, burst: int):
    """A callable returning the lines for alerts stored since it last ran: pseudonymised and masked as
    ``custodes alerts`` shows them (errors while the store is still being created are retried at the
    next poll)."""
    from stream.cli.alert_feed import AlertFeed
    from stream.privacy.disclosure import pseudonymiser, shown
    from stream.store.alerts import AlertStore

    pseudo = pseudonymiser(settings)
    state: dict[str, object] = {}

    def lines() -> list[str]:
        try:
            if "feed" not in state:
                store = AlertStore(settings.db_url, migrate_schema=False)
                newest = store.stored_after(None)
                start = (newest[0]["created_at"], newest[0]["id"]) if newest else None

                def fetch(after, limit):
                    return [shown(r, pseudo, False) for r in store.stored_after(after or (_EPOCH, ""), limit)]

                state["store"] = store
                state["feed"] = AlertFeed(fetch, lambda r: str(r.get("pseudonym") or ""), burst=burst,
                                          start_after=start)
            return state["feed"].poll()  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - the store may not exist yet; try again at the next poll
            return []

    return lines


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@main.command()
@pass_ctx
def worker(ctx: Context) -> None:
    """Run a Faust worker (decode, validate, detect) until SIGINT/SIGTERM."""
    from stream.worker.app import run_worker

    run_worker(_broker(ctx.settings()))


@main.command()
@pass_ctx
def sink(ctx: Context) -> None:
    """Consume the alerts topic into the store until SIGINT/SIGTERM."""
    from stream.store.sink import run_sink

    run_sink(_broker(ctx.settings()))


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _progress(paths: tuple[Path, ...], label: str):
    """A progress bar on a terminal; nothing at all when stderr is a file or pipe (click would
    otherwise write the bare label there)."""
    if not sys.stderr.isatty():
        return _NoProgress()
    total = sum(p.stat().st_size for p in paths if p.exists())
    return click.progressbar(length=max(total, 1), label=label, file=sys.stderr,
                             show_eta=True, show_percent=True)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False,
                                                                   path_type=Path))
@click.option("--format", "fmt", type=FORMATS, default="auto", show_default=True)
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Mapping file (config/mappings/*.toml) for a site's own CSV/JSON log.")
@pass_ctx
def ingest(ctx: Context, files: tuple[Path, ...], fmt: str, mapping: Path | None) -> None:
    """Normalise FILES and produce the events to Kafka."""
    from stream.sources.ingest import ingest as do_ingest

    settings = _broker(ctx.settings())
    started = time.perf_counter()
    with _input_errors(), _progress(files, "ingest") as bar:
        counts = do_ingest(settings, files, fmt, mapping, progress=bar.update)
    elapsed = time.perf_counter() - started
    dead = sum(counts.dead_lettered.values())
    click.echo(f"{plural(counts.records, 'record')} read: {plural(counts.events, 'event')} sent in "
               f"{plural(counts.messages, 'message')}, {dead:,} dead-lettered ({elapsed:.1f} s)")
    for line in counts.summary.lines(counts.dead_lettered):
        click.echo(line)


def _iso_times(alert: dict) -> dict:
    """An alert dict with its times in ISO 8601 (UTC), as every JSON the CLI writes has them."""
    from stream.cli.console import iso

    for key in ("ts", "first_seen", "last_seen"):
        if alert.get(key) is not None:
            alert[key] = iso(alert[key])
    return alert


def _as_of(value: str | None) -> float | None:
    if value is None:
        return None
    from stream.contract.schema import Invalid, parse_timestamp

    try:
        return parse_timestamp(value, "--as-of")
    except Invalid as exc:
        raise click.BadParameter(exc.detail) from None


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False,
                                                                   path_type=Path))
@click.option("--alerts-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the alerts as JSON lines here (default: standard output).")
@click.option("--format", "fmt", type=FORMATS, default="auto", show_default=True)
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as-of", help="Evaluate as if now were this ISO 8601 time (retention counts back from it).")
@click.option("--reveal", is_flag=True, help="Write the alerts as the detectors made them (raw user ids, masked "
              "values); needs --reason and is recorded in the review audit trail. Default: pseudonymised and masked.")
@click.option("--reason", help="Why the identities are needed (recorded with --reveal).")
@pass_ctx
def replay(ctx: Context, files: tuple[Path, ...], alerts_out: Path | None, fmt: str,
           mapping: Path | None, as_of: str | None, reveal: bool, reason: str | None) -> None:
    """Run FILES through the normalisers and detectors offline (no broker)."""
    from stream.offline.replay import replay as do_replay

    _reveal_options(reveal, reason)
    settings = ctx.settings()
    when = _as_of(as_of)
    if when is not None:
        click.echo(f"Evaluating as of {datetime.fromtimestamp(when, UTC).isoformat()} (not the wall "
                   f"clock): events before {datetime.fromtimestamp(when - settings.retention_s, UTC):%Y-%m-%d}"
                   f" are outside the {settings.retention_days}-day window.", err=True)
    started = time.perf_counter()
    with _input_errors(), _progress(files, "replay") as bar:
        result = do_replay(settings, files, fmt, mapping, as_of=when, progress=bar.update)
    elapsed = time.perf_counter() - started
    alerts = sorted(result.alerts.values(), key=lambda a: (a.ts, a.id))
    if reveal:
        _record_reveal(settings, "replay", reason, [a.id for a in alerts], stored=False)
        lines = b"".join(orjson.dumps(_iso_times(a.to_dict())) + b"\n" for a in alerts)
    else:
        from stream.privacy.disclosure import pseudonymiser, shown

        pseudo = pseudonymiser(settings)
        lines = b"".join(orjson.dumps(_iso_times(shown(a.to_dict(), pseudo, False))) + b"\n" for a in alerts)
    if alerts_out is not None:
        alerts_out.write_bytes(lines)
    else:
        sys.stdout.buffer.write(lines)
    dead = sum(result.dead_lettered.values())
    rate = result.consumed / elapsed if elapsed > 0 else 0
    click.echo(f"{result.consumed:,} events: {result.processed:,} processed ({result.duplicates:,} duplicates "
               f"dropped), {dead:,} dead-lettered, {result.expired:,} expired; {len(alerts):,} alerts "
               f"({elapsed:.1f} s, {rate:,.0f} events/s)", err=True)
    for line in result.summary.lines(result.dead_lettered):
        click.echo(line, err=True)


@main.command()
@click.option("--limit", default=50, show_default=True)
@click.option("--status", type=click.Choice(["new", "investigating", "closed"]))
@click.option("--detector")
@click.option("--order", type=click.Choice(["stored", "event"]), default="stored", show_default=True,
              help="Newest first by when the alert was stored, or by the time of its events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (times in ISO 8601, UTC).")
@click.option("--reveal", is_flag=True, help="Show user ids and masked values; needs --reason and is recorded "
              "in the review audit trail. Default: pseudonyms, masked as in the review app.")
@click.option("--reason", help="Why the identities are needed (recorded with --reveal).")
@pass_ctx
def alerts(ctx: Context, limit: int, status: str | None, detector: str | None, order: str, as_json: bool,
           reveal: bool, reason: str | None) -> None:
    """List stored alerts, newest first: pseudonymised and masked unless --reveal --reason TEXT."""
    from stream.cli.console import alerts_table, iso
    from stream.privacy.disclosure import pseudonymiser, shown_all
    from stream.store.alerts import AlertStore

    _reveal_options(reveal, reason)
    settings = ctx.settings()
    store = AlertStore(settings.db_url)
    try:
        rows = store.list_alerts(limit=limit, order=order, status=status, detector=detector)
    finally:
        store.dispose()
    if reveal and rows:
        _record_reveal(settings, "alerts", reason, [r["id"] for r in rows], stored=True)
    rows = shown_all(rows, pseudonymiser(settings), reveal)
    if as_json:
        for r in rows:
            out = {k: (iso(v) if isinstance(v, datetime) else v) for k, v in r.items()}
            click.echo(orjson.dumps(out, default=str).decode())
        return
    if not rows:
        click.echo("no alerts")
        return
    click.echo(alerts_table(rows, lambda r: str(r.get("subject") or r.get("pseudonym") or ""), order=order),
               nl=False)


def _reveal_options(reveal: bool, reason: str | None) -> None:
    if reason is not None and not reveal:
        raise click.UsageError("--reason goes with --reveal")
    if reveal and not (reason or "").strip():
        raise click.UsageError("--reveal needs --reason TEXT: why the identities are needed (it is recorded)")


def _record_reveal(settings: Settings, command: str, reason: str | None, alert_ids: list[str],
                   stored: bool) -> None:
    """Record a ``--reveal`` before anything is shown (stream/privacy/disclosure.py); refuse if it cannot be.
    The recorder is the review app's audit trail, wired here (the CLI is where the packages meet)."""
    from stream.privacy.disclosure import Disclosure, NotRecorded, record

    try:
        from review.cli import record_disclosure
    except ImportError:
        record_disclosure = None
    try:
        record(settings, Disclosure(command, reason or "", tuple(alert_ids), stored), record_disclosure)
    except NotRecorded as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@pass_ctx
def detectors(ctx: Context) -> None:
    """List every detector: id, what it catches, enabled or not, and its knobs."""
    import dataclasses

    from detectors.registry import CATALOG

    configured = ctx.settings().detectors
    for cls in CATALOG:
        det = cls.configure(configured.get(cls.id, {}))
        state = "enabled" if det.config.enabled else "disabled"
        click.echo(f"{cls.id} (v{cls.version}, {state}): {cls.summary}")
        for f in dataclasses.fields(det.config):
            if f.name != "enabled":
                click.echo(f"    {f.name} = {getattr(det.config, f.name)!r}")


@main.group()
def db() -> None:
    """The alert store."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Create or migrate the store's schema to the latest version."""
    from stream.store.alerts import engine_for, migrate

    settings = ctx.settings()
    engine = engine_for(settings.db_url)
    migrate(engine)
    engine.dispose()
    click.echo(f"store at {settings.describe()['database_url']} is up to date")


@main.group()
def topics() -> None:
    """Kafka topics."""


@topics.command("check")
@pass_ctx
def topics_check(ctx: Context) -> None:
    """Report Custodes topics whose retention exceeds the window; exit 1 if any does."""
    from stream.contract.topics import check_topics

    settings = _broker(ctx.settings())
    bad = 0
    for c in check_topics(settings, settings.broker or ""):
        days = "unlimited" if c.retention_ms is None or c.retention_ms < 0 else f"{c.retention_ms / 86_400_000:g} days"
        click.echo(f"{c.topic}: {c.partitions} partitions, retention {days}" +
                   (f"  PROBLEM: {c.problem}" if c.problem else ""))
        bad += c.problem is not None
    if bad:
        sys.exit(1)


@main.group()
def retention() -> None:
    """The two-year retention window: deletion runs and their receipts."""


@retention.command("run")
@pass_ctx
def retention_run(ctx: Context) -> None:
    """Delete stored data older than the window (except what is on legal hold); print the receipts."""
    from stream.store.alerts import AlertStore
    from stream.store.audit_chain import load_key
    from stream.store.retention import Retention

    settings = ctx.settings()
    store = AlertStore(settings.db_url)
    try:
        for r in Retention(store.engine, settings.retention_s, audit_key=load_key(settings)).run():
            click.echo(_receipt_line(r))
    finally:
        store.dispose()


def _receipt_line(r) -> str:
    span = (f"{r.oldest:%Y-%m-%d %H:%M} .. {r.newest:%Y-%m-%d %H:%M}" if r.oldest else "-")
    state = f"{r.finished_at:%Y-%m-%d %H:%M:%S}" if r.finished_at else "INTERRUPTED"
    return (f"{r.started_at:%Y-%m-%d %H:%M:%S}  {r.kind:<15} deleted {r.deleted:>7,}  kept on hold "
            f"{r.kept_on_hold:>4,}  cutoff {r.cutoff:%Y-%m-%d %H:%M}  deleted times {span}  finished {state}"
            f"  run {r.run_id[:8]}")


@retention.command("receipts")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def retention_receipts(ctx: Context, limit: int, as_json: bool) -> None:
    """List deletion receipts, newest first (counts and times only, never the deleted data)."""
    import dataclasses

    from stream.store.alerts import AlertStore
    from stream.store.retention import receipts

    store = AlertStore(ctx.settings().db_url)
    try:
        rows = receipts(store.engine, limit)
    finally:
        store.dispose()
    for r in rows:
        click.echo(orjson.dumps(dataclasses.asdict(r)).decode() if as_json else _receipt_line(r))
    if not rows and not as_json:
        click.echo("no retention runs yet")


@main.group()
def hold() -> None:
    """Legal holds: keep an alert or case past the retention window."""


@hold.command("place")
@click.argument("kind", type=click.Choice(["alert", "case"]))
@click.argument("target_id")
@click.option("--reason", required=True, help="Why (e.g. the proceedings or referral reference).")
@click.option("--by", "by", required=True, help="Who places the hold.")
@pass_ctx
def hold_place(ctx: Context, kind: str, target_id: str, reason: str, by: str) -> None:
    from stream.store.alerts import AlertStore
    from stream.store.retention import place_hold

    store = AlertStore(ctx.settings().db_url)
    try:
        hold_id = place_hold(store.engine, kind, target_id, reason, by)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    click.echo(f"hold {hold_id} placed on {kind} {target_id}")


@hold.command("release")
@click.argument("hold_id", type=int)
@click.option("--reason", required=True)
@click.option("--by", "by", required=True)
@pass_ctx
def hold_release(ctx: Context, hold_id: int, reason: str, by: str) -> None:
    from stream.store.alerts import AlertStore
    from stream.store.retention import release_hold

    store = AlertStore(ctx.settings().db_url)
    try:
        done = release_hold(store.engine, hold_id, reason, by)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    if not done:
        raise click.ClickException(f"no active hold {hold_id}")
    click.echo(f"hold {hold_id} released")


@hold.command("list")
@click.option("--active", is_flag=True, help="Only holds not yet released.")
@pass_ctx
def hold_list(ctx: Context, active: bool) -> None:
    from stream.store.alerts import AlertStore
    from stream.store.retention import list_holds

    store = AlertStore(ctx.settings().db_url)
    try:
        rows = list_holds(store.engine, active_only=active)
    finally:
        store.dispose()
    if not rows:
        click.echo("no holds")
    for h in rows:
        released = (f"released {h['released_at']:%Y-%m-%d} by {h['released_by']}: {h['release_reason']}"
                    if h["released_at"] else "ACTIVE")
        click.echo(f"{h['id']:>5}  {h['target_kind']:<5} {h['target_id']}  placed {h['placed_at']:%Y-%m-%d} by "
                   f"{h['placed_by']}: {h['reason']}  [{released}]")


@main.group()
def reference() -> None:
    """Reference data for the detectors (staff directory, cases, restricted records, sharing, apps)."""


@reference.command("push")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ctx
def reference_push(ctx: Context, files: tuple[Path, ...]) -> None:
    """Publish reference FILES (staff.jsonl, cases.csv, …) to their compacted topics; running workers
    apply them without a restart. A record with "deleted": true removes that key."""
    from detectors.reference import ReferenceError as BadReference
    from stream.detection.reference import push

    try:
        counts = push(_broker(ctx.settings()), files)
    except (BadReference, KeyError) as exc:
        raise click.ClickException(f"reference data: {exc}") from None
    for kind, n in sorted(counts.items()):
        click.echo(f"{kind}: {n:,} records published")


@reference.command("peers")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the peer baselines (reference kind peer), e.g. peers.jsonl.")
@click.option("--format", "fmt", type=FORMATS, default="auto", show_default=True)
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ctx
def reference_peers(ctx: Context, files: tuple[Path, ...], out: Path, fmt: str, mapping: Path | None) -> None:
    """Build peer-group (team/role) activity baselines from event FILES in time order, for unusual_volume."""
    from stream.detection.peers import build_peer_baselines

    with _input_errors():
        records = build_peer_baselines(ctx.settings(), files, fmt, mapping)
    out.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    click.echo(f"{len(records)} peer group baseline(s) written to {out}")


@reference.command("check")
@pass_ctx
def reference_check(ctx: Context) -> None:
    """Load the reference files and report what they hold (or the first error)."""
    from detectors.reference import ReferenceError as BadReference
    from stream.detection.reference import load_dir, reference_files

    settings = ctx.settings()
    try:
        load_dir(settings.reference_dir)
    except BadReference as exc:
        raise click.ClickException(str(exc)) from None
    files = reference_files(settings.reference_dir)
    click.echo(f"{settings.reference_dir}: {len(files)} file(s) load cleanly: {', '.join(sorted(files)) or 'none'}")


@main.command("deadletters")
@click.option("--limit", default=20, show_default=True, help="Show the last N dead letters (all are counted).")
@click.option("--reason", help="Only dead letters of this reason (e.g. missing_user).")
@pass_ctx
def deadletters(ctx: Context, limit: int, reason: str | None) -> None:
    """Read the dead-letter topic: per dead letter its reason, field path, source (topic/partition/offset
    or file:line), the detail and a redacted excerpt of the input; then the count per reason."""
    from stream.worker.deadletters import read_topic

    settings = _broker(ctx.settings())
    letters, counts = read_topic(settings.broker or "", settings.topics.dead_letter, limit, reason)
    for one in letters:
        click.echo(one.line())
    total = sum(counts.values())
    summary = ", ".join(f"{r} {n:,}" for r, n in counts.most_common())
    click.echo(f"{total:,} dead letters on {settings.topics.dead_letter}" + (f": {summary}" if summary else ""))


@main.group()
def mapping() -> None:
    """Mapping files (config/mappings/*.toml) for a site's own logs."""


@mapping.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sample", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A sample of the log the mapping reads.")
@click.option("--limit", default=200, show_default=True, help="Records shown one by one (all are counted).")
@pass_ctx
def mapping_check(ctx: Context, file: Path, sample: Path, limit: int) -> None:
    """Show what each record of SAMPLE becomes through the mapping FILE, or why it is refused (line
    number, reason, field path). Exit 1 when the mapping cannot be loaded or every record is refused."""
    from stream.sources.activities import TableError
    from stream.sources.activities import load as load_table
    from stream.sources.mapping import load as load_mapping
    from stream.sources.sample import check

    settings = ctx.settings()
    with _input_errors():
        loaded = load_mapping(file)
        try:
            table = load_table(settings.activities_file) if settings.activities_file else None
        except TableError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{file}: loads cleanly ({loaded.format}{', keys case-insensitive' if loaded.ignore_case else ''}"
                   f", {len(loaded.when)} event kind(s))")
        last = ""
        for line in check(sample, loaded, table=table, limit=limit, org_domains=settings.internal_domains):
            click.echo(line)
            last = line
    if " 0 events," in last and not last.startswith("0 records"):
        sys.exit(1)


@main.command("config")
@pass_ctx
def show_config(ctx: Context) -> None:
    """Print the effective settings (secrets masked)."""
    click.echo(orjson.dumps(ctx.settings().describe(), option=orjson.OPT_INDENT_2).decode())


def _register_optional_commands() -> None:
    """Commands owned by other modules (generator, review app) register themselves."""
    from stream.cli.synth import COMMANDS as synth_commands

    for command in synth_commands:
        main.add_command(command)
    from stream.cli.rules import COMMANDS as rules_commands

    for command in rules_commands:
        main.add_command(command)
    try:
        from review.cli import COMMANDS
    except ImportError:
        return
    for command in COMMANDS:
        main.add_command(command)


_register_optional_commands()

if __name__ == "__main__":
    main()
