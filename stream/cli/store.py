"""The alert store: `db upgrade`, `retention run|receipts`, `hold place|release|list`."""

from __future__ import annotations

import click
import orjson

from stream.cli.context import Context, pass_ctx


@click.group()
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


@click.group()
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


@click.group()
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
