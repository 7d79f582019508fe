"""Mapping files for a site's own logs: `mapping check`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from stream.cli.context import Context, input_errors, pass_ctx


@click.group()
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
    with input_errors():
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
