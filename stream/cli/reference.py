"""Reference data: `reference push|peers|check`."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from stream.cli.context import FORMATS, Context, input_errors, pass_ctx, with_broker


@click.group()
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
        counts = push(with_broker(ctx.settings()), files)
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
@click.option("--hosts-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the hosts one person dominates (reference kind host), e.g. hosts.jsonl.")
@pass_ctx
def reference_peers(ctx: Context, files: tuple[Path, ...], out: Path, fmt: str, mapping: Path | None,
                    hosts_out: Path | None) -> None:
    """Build peer-group (team/role) activity baselines from event FILES in time order, for unusual_volume
    (and what each group commonly uses and its usual media day, for first_use and media_volume)."""
    from stream.detection.peers import build_peer_baselines

    hosts: list[dict] = []
    with input_errors():
        records = build_peer_baselines(ctx.settings(), files, fmt, mapping, hosts)
    out.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    click.echo(f"{len(records)} peer group baseline(s) written to {out}")
    if hosts_out is not None:
        hosts_out.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in hosts))
        click.echo(f"{len(hosts)} learned host owner(s) written to {hosts_out}")


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
