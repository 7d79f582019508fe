"""``custodes generate`` and ``custodes evaluate``. Registered by stream/cli/__init__.py from :data:`COMMANDS`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
import orjson


def _settings():
    """The settings of the enclosing ``custodes`` group (its --config etc.), else the defaults."""
    from stream.contract.settings import SettingsError, load

    ctx = click.get_current_context()
    obj = ctx.find_root().obj
    try:
        if obj is not None and hasattr(obj, "settings"):
            return obj.settings()
        return load()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--staff", type=click.IntRange(1), default=200, show_default=True, help="Members of staff.")
@click.option("--days", type=click.IntRange(1), default=14, show_default=True, help="Days simulated.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, byte-identical output.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for events.jsonl, device_notifications.jsonl, reference/, truth.jsonl.")
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="First day (UTC), YYYY-MM-DD [default: 2026-03-18].")
@click.option("--insider-rate", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="Share of staff who are insiders (each gets one scenario).")
def generate(staff: int, days: int, seed: int, out: Path, start, insider_rate: float) -> None:
    """Generate a synthetic organisation's audit events, reference data and ground truth."""
    from stream.synth.generate import DEFAULT_START
    from stream.synth.generate import generate as run

    first: date = start.date() if start is not None else DEFAULT_START
    result = run(out, staff=staff, days=days, seed=seed, start=first, insider_rate=insider_rate,
                 progress=lambda n: click.echo(f"  {n:,} events…", err=True))
    total = result.events + result.device_notifications
    click.echo(f"{total:,} events ({result.events:,} audit events, {result.device_notifications:,} device "
               f"notifications), {result.insiders} insiders, written to {out}")
    click.echo(f"{result.seconds:.1f} s, {result.events_per_s:,.0f} events/s")


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="The figures as one JSON object.")
def evaluate(directory: Path, as_json: bool) -> None:
    """Replay a generated organisation through the detectors and score them against its ground truth."""
    from stream.offline.evaluate import evaluate as run
    from stream.offline.evaluate import report

    if not (directory / "truth.jsonl").is_file():
        raise click.ClickException(f"{directory} has no truth.jsonl: generate it with `custodes generate`")
    figures = run(_settings(), directory)
    if as_json:
        click.echo(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(report(figures))


COMMANDS = [generate, evaluate]
"""For stream/cli/__init__.py: ``for command in COMMANDS: main.add_command(command)``."""
