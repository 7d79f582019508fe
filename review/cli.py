"""Commands the review app adds to ``custodes``: ``review``, ``users add/disable/list``,
``audit verify/seal``; and the recorder of ``--reveal`` in ``custodes alerts`` / ``custodes replay``
(:func:`record_disclosure`, which ``stream.cli`` passes to ``stream.privacy.disclosure.record``).

``stream.cli`` imports ``COMMANDS`` from here; this module does not import ``stream.cli`` back (the
settings come from the root click context's object, or from ``stream.contract.settings.load``).
"""

from __future__ import annotations

import getpass
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from stream.contract.settings import Settings, SettingsError, load


def _settings() -> Settings:
    ctx = click.get_current_context()
    obj = ctx.find_root().obj
    try:
        return obj.settings() if obj is not None and hasattr(obj, "settings") else load()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _audit_key(settings: Settings, create: bool = True) -> bytes:
    from stream.store.audit_chain import KeyMissing, load_key

    try:
        return load_key(settings, create=create)
    except (KeyMissing, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _engine(settings: Settings):
    from stream.store.alerts import engine_for, migrate

    engine = engine_for(settings.db_url)
    migrate(engine)
    return engine


@click.command("review")
def review() -> None:
    """Serve the review web app on web_bind:review_port (default 127.0.0.1:8080)."""
    from .app import serve
    from .config import ReviewConfig

    settings = _settings()
    try:
        config = ReviewConfig.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Custodes review on http://{settings.web_bind}:{settings.review_port}/", err=True)
    serve(settings, config=config)


@click.group("users")
def users() -> None:
    """Review app accounts (roles: reviewer, supervisor, auditor, admin)."""


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:255]
    except Exception:  # noqa: BLE001
        return "cli"


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["reviewer", "supervisor", "auditor", "admin"]), required=True)
@click.option("--linked-user-id", help="The account holder's own monitored user id (hides alerts about them).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--no-password", is_flag=True, help="No local password: single sign-on (proxy header) only.")
def users_add(name: str, role: str, linked_user_id: str | None, password_stdin: bool, no_password: bool) -> None:
    """Add an account. The password is prompted for (or read from stdin), never given as an argument."""
    from .audit import AuditTrail
    from .auth import add_user

    password = None if no_password else _read_password(password_stdin)
    settings = _settings()
    engine = _engine(settings)
    try:
        trail = AuditTrail(engine, time.time, key=_audit_key(settings))
        with trail.transaction() as conn:
            add_user(conn, name, role, password, linked_user_id, datetime.now(UTC))
            trail.append(conn, actor=_cli_actor(), role="admin", action="user_add", target_type="account",
                         target_id=name.strip(), detail={"role": role, "linked": bool(linked_user_id)})
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"added {role} {name.strip()}")


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable an account and end its sessions."""
    from .audit import AuditTrail
    from .auth import disable_user

    settings = _settings()
    engine = _engine(settings)
    try:
        trail = AuditTrail(engine, time.time, key=_audit_key(settings))
        with trail.transaction() as conn:
            if not disable_user(conn, name, datetime.now(UTC)):
                raise click.ClickException(f"no account {name!r}")
            trail.append(conn, actor=_cli_actor(), role="admin", action="user_disable", target_type="account",
                         target_id=name)
    finally:
        engine.dispose()
    click.echo(f"disabled {name}")


@users.command("list")
def users_list() -> None:
    """List accounts (name, role, state)."""
    from sqlalchemy import select

    from .tables import users as users_table

    engine = _engine(_settings())
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(users_table.c.name, users_table.c.role, users_table.c.disabled,
                                       users_table.c.linked_user_id).order_by(users_table.c.name)).all()
    finally:
        engine.dispose()
    if not rows:
        click.echo("no accounts")
    for name, role, disabled, linked in rows:
        click.echo(f"{name:<24} {role:<11} {'disabled' if disabled else 'active':<9} {'linked' if linked else ''}")


@click.group("audit")
def audit() -> None:
    """The review app's hash-chained audit trail."""


@audit.command("verify")
@click.option("--head-file", type=click.Path(dir_okay=False, path_type=Path),
              help="The signed head the review app keeps (default: data_dir/audit-head.json).")
def audit_verify(head_file: Path | None) -> None:
    """Check every record's keyed hash and link, and that the chain still holds the signed head kept
    outside the database (a removed tail); exit 1 naming the first broken record. Needs the audit key
    (CUSTODES_AUDIT_KEY or data_dir/audit.key); it is never printed."""
    from stream.store.audit_chain import HEAD_FILE, HeadForged, read_head, write_head

    from .audit import verify

    settings = _settings()
    key = _audit_key(settings, create=False)
    path = head_file or Path(settings.data_dir) / HEAD_FILE
    try:
        remembered = read_head(path, key)
    except HeadForged as exc:
        click.echo(f"audit trail BROKEN: {exc}")
        sys.exit(1)
    engine = _engine(settings)
    try:
        report = verify(engine, remembered, key=key)
    finally:
        engine.dispose()
    click.echo(report.describe())
    if not report.ok:
        sys.exit(1)
    if report.head_seq:
        try:
            write_head(path, key, report.head_seq, report.head_hash, datetime.now(UTC))
        except OSError as exc:
            click.echo(f"note: the signed head was not written to {path} ({exc.strerror})", err=True)


@audit.command("seal")
def audit_seal() -> None:
    """After upgrading from an unkeyed chain: append a keyed record covering the plain records (the
    review app does this at start). Does nothing when the chain already ends in a keyed record."""
    from .audit import AuditTrail

    settings = _settings()
    engine = _engine(settings)
    try:
        rec = AuditTrail(engine, time.time, key=_audit_key(settings)).seal(_cli_actor())
    finally:
        engine.dispose()
    click.echo(f"sealed at record #{rec['seq']}" if rec else "nothing to seal: the chain is keyed")


def record_disclosure(settings: Settings, disclosure) -> None:
    """The recorder of ``custodes alerts --reveal`` / ``custodes replay --reveal`` (stream/privacy/disclosure.py):
    an audit record per stored alert shown (``reveal`` of alert X, like a reveal in the app), or one
    for an offline replay output (its alert count and a digest of their ids), with the reason, before
    anything is shown. The reason must be as long as the app asks of reviewers.

    Once recorded, each alert shown is also emitted as a review event (``reveal_identity``, one per
    alert, about the alert's subject when known) on the events topic, as a reveal in the app is, so
    reviewer_watch counts an operator's reveals too. The event's user is the operating-system account
    running the command. Emission never fails the command (review/events.py)."""
    import hashlib

    from .audit import AuditTrail
    from .config import ReviewConfig

    reason = disclosure.reason.strip()
    min_chars = ReviewConfig.from_env().reveal_reason_min_chars
    if len(reason) < min_chars:
        raise ValueError(f"state a reason of at least {min_chars} characters")
    if len(reason) > 2000:
        raise ValueError("reasons are limited to 2,000 characters")
    detail = {"scope": "identity+content", "reason": reason, "via": f"custodes {disclosure.command}"}
    engine = _engine(settings)
    shown: list[tuple[dict, str, str | None]] = []  # (audit record, alert id, subject)
    try:
        trail = AuditTrail(engine, time.time, key=_audit_key(settings))
        with trail.transaction() as conn:
            if disclosure.stored:
                subjects = disclosure.subjects or (None,) * len(disclosure.alert_ids)
                for alert_id, subject in zip(disclosure.alert_ids, subjects, strict=True):
                    rec = trail.append(conn, actor=_cli_actor(), role="operator", action="reveal",
                                       target_type="alert", target_id=alert_id, detail=detail)
                    shown.append((rec, alert_id, subject))
            else:
                digest = hashlib.sha256("\n".join(sorted(disclosure.alert_ids)).encode()).hexdigest()
                rec = trail.append(conn, actor=_cli_actor(), role="operator", action="reveal",
                                   target_type="offline", target_id=disclosure.command,
                                   detail={**detail, "alerts": len(disclosure.alert_ids), "alert_ids_sha256": digest})
                shown.extend((rec, alert_id, None) for alert_id in disclosure.alert_ids)
    finally:
        engine.dispose()
    _emit_reveals(settings, shown)


def _emit_reveals(settings: Settings, shown: list[tuple[dict, str, str | None]]) -> None:
    """One ``reveal_identity`` review event per alert shown (committed records only)."""
    import hashlib

    from .events import emitter_for, review_event

    if not shown:
        return
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001
        user = "cli"
    emitter = emitter_for(settings)
    try:
        for rec, alert_id, subject in shown:
            # one audit record may cover many alerts (an offline output): each event gets its own id
            digest = hashlib.sha256(f"{rec['hash']}:{alert_id}".encode()).hexdigest()
            emitter.emit(review_event(seq=rec["seq"], digest=digest, ts=rec["ts"].timestamp(), user_id=user,
                                      account=_cli_actor(), action="reveal_identity", target_type="alert",
                                      target_id=alert_id, about=subject))
    finally:
        emitter.close()


COMMANDS = [review, users, audit]
