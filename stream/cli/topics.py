"""Kafka topics: `topics check` (retention) and `deadletters` (what was refused, and why)."""

from __future__ import annotations

import sys

import click

from stream.cli.context import Context, pass_ctx, with_broker


@click.group()
def topics() -> None:
    """Kafka topics."""


@topics.command("check")
@pass_ctx
def topics_check(ctx: Context) -> None:
    """Report Custodes topics whose retention exceeds the window; exit 1 if any does."""
    from stream.contract.topics import check_topics

    settings = with_broker(ctx.settings())
    bad = 0
    for c in check_topics(settings, settings.broker or ""):
        days = "unlimited" if c.retention_ms is None or c.retention_ms < 0 else f"{c.retention_ms / 86_400_000:g} days"
        click.echo(f"{c.topic}: {c.partitions} partitions, retention {days}" +
                   (f"  PROBLEM: {c.problem}" if c.problem else ""))
        bad += c.problem is not None
    if bad:
        sys.exit(1)


@click.command("deadletters")
@click.option("--limit", default=20, show_default=True, help="Show the last N dead letters (all are counted).")
@click.option("--reason", help="Only dead letters of this reason (e.g. missing_user).")
@pass_ctx
def deadletters(ctx: Context, limit: int, reason: str | None) -> None:
    """Read the dead-letter topic: per dead letter its reason, field path, source (topic/partition/offset
    or file:line), the detail and a redacted excerpt of the input; then the count per reason."""
    from stream.worker.deadletters import read_topic

    settings = with_broker(ctx.settings())
    letters, counts = read_topic(settings.broker or "", settings.topics.dead_letter, limit, reason)
    for one in letters:
        click.echo(one.line())
    total = sum(counts.values())
    summary = ", ".join(f"{r} {n:,}" for r, n in counts.most_common())
    click.echo(f"{total:,} dead letters on {settings.topics.dead_letter}" + (f": {summary}" if summary else ""))
