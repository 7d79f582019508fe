"""Shared by every command: the click context object, file and broker checks, reveal options."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from stream.contract.settings import Settings, SettingsError, load


def _formats() -> click.Choice:
    from stream.sources.files import FORMATS as KNOWN

    return click.Choice(list(KNOWN))


FORMATS = _formats()


@contextlib.contextmanager
def input_errors():
    """A file the normalisers cannot read at all (unknown format, bad mapping file) is a clear error,
    not a traceback. (Bad records inside a readable file are dead-lettered, not errors.)"""
    from stream.sources.file_records import FormatError
    from stream.sources.mapping import MappingError

    try:
        yield
    except (FormatError, MappingError) as exc:
        raise click.ClickException(str(exc)) from None


class Context:
    def __init__(self, config: Path | None, overrides: dict, debug: bool = False) -> None:
        self.config = config
        self.overrides = overrides
        self.debug = debug
        self.loaded: Settings | None = None

    def settings(self, **more) -> Settings:
        try:
            settings = load(self.config, **{**self.overrides, **more})
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None
        self.loaded = settings
        return settings


pass_ctx = click.make_pass_decorator(Context)


def with_broker(settings: Settings) -> Settings:
    """The configured broker, else the one of a ``custodes run`` on this data directory; either must
    accept a connection within a few seconds, or the command ends with one line saying so."""
    from stream.cli.console import check_broker
    from stream.cli.embedded import running_broker

    if settings.broker:
        check_broker(settings.broker)
        return settings
    found = running_broker(settings)
    if not found:
        raise click.ClickException(
            "no broker: set CUSTODES_BROKER (or --broker), or start `custodes run` first"
        )
    check_broker(found)
    settings = settings.model_copy(update={"broker": found})
    ctx = click.get_current_context(silent=True)
    if ctx is not None and isinstance(ctx.find_object(Context), Context):
        ctx.find_object(Context).loaded = settings
    return settings


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def progress(paths: tuple[Path, ...], label: str):
    """A progress bar on a terminal; nothing at all when stderr is a file or pipe (click would
    otherwise write the bare label there)."""
    if not sys.stderr.isatty():
        return _NoProgress()
    total = sum(p.stat().st_size for p in paths if p.exists())
    return click.progressbar(length=max(total, 1), label=label, file=sys.stderr,
                             show_eta=True, show_percent=True)


def iso_times(alert: dict) -> dict:
    """An alert dict with its times in ISO 8601 (UTC), as every JSON the CLI writes has them."""
    from stream.cli.console import iso

    for key in ("ts", "first_seen", "last_seen"):
        if alert.get(key) is not None:
            alert[key] = iso(alert[key])
    return alert


def parse_as_of(value: str | None) -> float | None:
    if value is None:
        return None
    from stream.contract.codec import Invalid, parse_timestamp

    try:
        return parse_timestamp(value, "--as-of")
    except Invalid as exc:
        raise click.BadParameter(exc.detail) from None


def reveal_options(reveal: bool, reason: str | None) -> None:
    if reason is not None and not reveal:
        raise click.UsageError("--reason goes with --reveal")
    if reveal and not (reason or "").strip():
        raise click.UsageError("--reveal needs --reason TEXT: why the identities are needed (it is recorded)")


def record_reveal(settings: Settings, command: str, reason: str | None, alert_ids: list[str],
                   stored: bool, subjects: list[str | None] | None = None) -> None:
    """Record a ``--reveal`` before anything is shown (stream/privacy/disclosure.py); refuse if it cannot be.
    The recorder is the review app's audit trail, wired here (the CLI is where the packages meet)."""
    from stream.privacy.disclosure import Disclosure, NotRecorded, record

    try:
        from review.cli import record_disclosure
    except ImportError:
        record_disclosure = None
    try:
        record(settings, Disclosure(command, reason or "", tuple(alert_ids), stored, tuple(subjects or ())),
               record_disclosure)
    except NotRecorded as exc:
        raise click.ClickException(str(exc)) from None
