"""The long-running processes: `run` (everything on the embedded broker), `worker`, `sink`."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import click

from stream.cli.context import Context, pass_ctx, with_broker
from stream.contract.settings import Settings


@click.command()
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
        # with --demo the person pages read the demo organisation's staff directory (teams, leave dates),
        # which run_demo writes there (the worker gets it through the reference topics)
        emb.start(review_env={"CUSTODES_REFERENCE_DIR": str(settings.data_dir.resolve() / "demo" / "reference")}
                  if demo else None)
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


@click.command()
@pass_ctx
def worker(ctx: Context) -> None:
    """Run a Faust worker (decode, validate, detect) until SIGINT/SIGTERM."""
    from stream.worker.app import run_worker

    run_worker(with_broker(ctx.settings()))


@click.command()
@pass_ctx
def sink(ctx: Context) -> None:
    """Consume the alerts topic into the store until SIGINT/SIGTERM."""
    from stream.store.sink import run_sink

    run_sink(with_broker(ctx.settings()))
