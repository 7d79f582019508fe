"""Commands that read log files: `ingest` (to Kafka) and `replay` (offline, no broker)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from stream.cli.console import plural
from stream.cli.context import (
    FORMATS,
    Context,
    input_errors,
    iso_times,
    parse_as_of,
    pass_ctx,
    progress,
    record_reveal,
    reveal_options,
    with_broker,
)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False,
                                                                   path_type=Path))
@click.option("--format", "fmt", type=FORMATS, default="auto", show_default=True)
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Mapping file (config/mappings/*.toml) for a site's own CSV/JSON log.")
@pass_ctx
def ingest(ctx: Context, files: tuple[Path, ...], fmt: str, mapping: Path | None) -> None:
    """Normalise FILES and produce the events to Kafka."""
    from stream.sources.ingest import ingest as do_ingest

    settings = with_broker(ctx.settings())
    started = time.perf_counter()
    with input_errors(), progress(files, "ingest") as bar:
        counts = do_ingest(settings, files, fmt, mapping, progress=bar.update)
    elapsed = time.perf_counter() - started
    dead = sum(counts.dead_lettered.values())
    click.echo(f"{plural(counts.records, 'record')} read: {plural(counts.events, 'event')} sent in "
               f"{plural(counts.messages, 'message')}, {dead:,} dead-lettered ({elapsed:.1f} s)")
    for line in counts.summary.lines(counts.dead_lettered):
        click.echo(line)


@click.command()
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
@click.option("--activity-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write each person's activity per day by kind (the person story's counts) as JSON lines "
              "here (pseudonymised unless --reveal).")
@pass_ctx
def replay(ctx: Context, files: tuple[Path, ...], alerts_out: Path | None, fmt: str,
           mapping: Path | None, as_of: str | None, reveal: bool, reason: str | None,
           activity_out: Path | None = None) -> None:
    """Run FILES through the normalisers and detectors offline (no broker)."""
    from stream.offline.replay import replay as do_replay

    reveal_options(reveal, reason)
    settings = ctx.settings()
    when = parse_as_of(as_of)
    if when is not None:
        click.echo(f"Evaluating as of {datetime.fromtimestamp(when, UTC).isoformat()} (not the wall "
                   f"clock): events before {datetime.fromtimestamp(when - settings.retention_s, UTC):%Y-%m-%d}"
                   f" are outside the {settings.retention_days}-day window.", err=True)
    started = time.perf_counter()
    with input_errors(), progress(files, "replay") as bar:
        result = do_replay(settings, files, fmt, mapping, as_of=when, progress=bar.update)
    elapsed = time.perf_counter() - started
    alerts = sorted(result.alerts.values(), key=lambda a: (a.ts, a.id))
    if reveal:
        record_reveal(settings, "replay", reason, [a.id for a in alerts], stored=False)
        lines = b"".join(orjson.dumps(iso_times(a.to_dict())) + b"\n" for a in alerts)
    else:
        from stream.privacy.disclosure import pseudonymiser, shown

        pseudo = pseudonymiser(settings)
        lines = b"".join(orjson.dumps(iso_times(shown(a.to_dict(), pseudo, False))) + b"\n" for a in alerts)
    if alerts_out is not None:
        alerts_out.write_bytes(lines)
    else:
        sys.stdout.buffer.write(lines)
    if activity_out is not None:
        from stream.privacy.disclosure import pseudonymiser

        who = (lambda person: person) if reveal else pseudonymiser(settings)
        activity_out.write_bytes(b"".join(
            orjson.dumps({**d.to_dict(), "person": who(d.person)}) + b"\n"
            for _, d in sorted(result.days.items())))
        click.echo(f"{len(result.days):,} person-days of activity written to {activity_out}"
                   + (f" ({result.late_activity:,} events more than a day older than their person's newest day "
                      "not counted)" if result.late_activity else ""), err=True)
    dead = sum(result.dead_lettered.values())
    rate = result.consumed / elapsed if elapsed > 0 else 0
    click.echo(f"{result.consumed:,} events: {result.processed:,} processed ({result.duplicates:,} duplicates "
               f"dropped), {dead:,} dead-lettered, {result.expired:,} expired; {len(alerts):,} alerts "
               f"({elapsed:.1f} s, {rate:,.0f} events/s)", err=True)
    for line in result.summary.lines(result.dead_lettered):
        click.echo(line, err=True)
