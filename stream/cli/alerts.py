"""`custodes alerts` and `custodes detectors`: what was found and what looks for it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
import orjson

from stream.cli.context import Context, pass_ctx, record_reveal, reveal_options


@click.command()
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

    reveal_options(reveal, reason)
    settings = ctx.settings()
    store = AlertStore(settings.db_url)
    try:
        rows = store.list_alerts(limit=limit, order=order, status=status, detector=detector)
    finally:
        store.dispose()
    if reveal and rows:
        record_reveal(settings, "alerts", reason, [r["id"] for r in rows], stored=True,
                      subjects=[r.get("subject") for r in rows])
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


@click.command()
@click.option("--docs", "docs", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Rewrite the generated parts of this Markdown file (docs/detectors.md) from the code.")
@pass_ctx
def detectors(ctx: Context, docs: Path | None) -> None:
    """List every detector: id, what it catches, enabled or not, and its knobs."""
    import dataclasses

    from detectors.registry import CATALOG

    if docs is not None:
        from stream.cli.detector_docs import missing, render

        text = docs.read_text(encoding="utf-8")
        new = render(text)
        if new != text:
            docs.write_text(new, encoding="utf-8")
        click.echo(f"{docs}: {'rewritten' if new != text else 'up to date'}")
        for id_ in missing(new):
            click.echo(f"  no knobs part for {id_}: add <!-- generated: knobs {id_} --><!-- end generated -->")
        return
    configured = ctx.settings().detectors
    for cls in CATALOG:
        det = cls.configure(configured.get(cls.id, {}))
        state = "enabled" if det.config.enabled else "disabled"
        click.echo(f"{cls.id} (v{cls.version}, {state}): {cls.summary}")
        for f in dataclasses.fields(det.config):
            if f.name != "enabled":
                click.echo(f"    {f.name} = {getattr(det.config, f.name)!r}")
