"""``custodes rules list|check|test``: the Sigma rules a worker would run (stream/detection/rules.py)."""

from __future__ import annotations

from pathlib import Path

import click


def _settings(ctx: click.Context):
    return ctx.obj.settings()


def _dirs(dirs: tuple[Path, ...]) -> list[Path] | None:
    return list(dirs) or None


@click.group("rules")
def rules() -> None:
    """Sigma rules: list what loads, check why a rule is refused, run each rule's examples."""


@rules.command("list")
@click.argument("dirs", nargs=-1, type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.pass_context
def rules_list(ctx: click.Context, dirs: tuple[Path, ...]) -> None:
    """Every loaded rule: id, level, kind, title, file (DIRS: instead of [rules] dir/dirs); a rule the
    site disabled ([rules] disabled) is listed too, marked so."""
    from stream.detection.rules import load

    configured = _settings(ctx).rules
    off = set(configured.disabled)
    loaded = load(configured.model_copy(update={"disabled": ()}), _dirs(dirs))

    def mark(info) -> str:
        return "  (disabled)" if info.id in off or getattr(info, "name", None) in off else ""

    for r in loaded.rules.detections:
        kind = "detection" if r.alert else "detection (used by a correlation)"
        click.echo(f"{r.info.id}  {r.info.level:<13} {kind:<34} {r.info.title}  [{r.info.file}]{mark(r.info)}")
    for c in loaded.rules.correlations:
        by = ", ".join(c.group_by[0]) if c.group_by and c.group_by[0] else "everyone"
        grouped = f"  (across people, by {by})" if c.grouped else ""
        click.echo(f"{c.info.id}  {c.info.level:<13} {'correlation ' + c.type:<34} {c.info.title}  "
                   f"[{c.info.file}]{mark(c.info)}{grouped}")


@rules.command("check")
@click.argument("dirs", nargs=-1, type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.pass_context
def rules_check(ctx: click.Context, dirs: tuple[Path, ...]) -> None:
    """Load the rules and report each refused one (file, rule, field, reason); exit 1 if any is."""
    from stream.detection.rules import load

    loaded = load(_settings(ctx).rules, _dirs(dirs))
    for r in loaded.refused:
        click.echo(f"refused: {r.message()}  ({r.reason})")
    for rid in loaded.rules.disabled:
        click.echo(f"disabled: {rid}")
    rs = loaded.rules
    click.echo(f"{len(loaded.files)} files: {len(rs.detections)} detection and {len(rs.correlations)} "
               f"correlation rules loaded, {len(loaded.refused)} refused, {len(rs.disabled)} disabled")
    for reason, n in sorted(loaded.counts().items()):
        click.echo(f"  refused ({reason}): {n}")
    if loaded.refused:
        ctx.exit(1)


@rules.command("test")
@click.argument("dirs", nargs=-1, type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.pass_context
def rules_test(ctx: click.Context, dirs: tuple[Path, ...]) -> None:
    """Run each rule file's examples (<rule>.test.yml) and compare the alerts raised; exit 1 on a failure."""
    from stream.detection.rule_tests import run_tests

    _, results = run_tests(_settings(ctx), _dirs(dirs))
    failed = 0
    for r in results:
        if r.ok:
            click.echo(f"ok    {r.file}: {r.case}")
        else:
            failed += 1
            why = r.error or f"expected {r.expected} alert(s), got {r.got}"
            click.echo(f"FAIL  {r.file}: {r.case}: {why}")
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        ctx.exit(1)


COMMANDS = [rules]
