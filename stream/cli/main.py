"""The ``custodes`` group: global options, one-line errors, and every command group registered.

Each command group lives in its own module of this package; this is the only place they meet."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from stream.cli.context import Context, pass_ctx


class _Main(click.Group):
    """Broker, database and file failures end a command with one line saying what to check, not a
    traceback (``custodes --debug`` shows the traceback too). Anything else is a bug and is shown."""

    def invoke(self, ctx: click.Context):
        from stream.cli.console import explain

        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - translated or re-raised
            obj = ctx.obj if isinstance(ctx.obj, Context) else None
            settings = obj.loaded if obj is not None else None
            database = settings.describe()["database_url"] if settings is not None else None
            message = explain(exc, broker=settings.broker if settings else None, database=database)
            if message is None:
                raise
            if obj is not None and obj.debug:
                import traceback

                traceback.print_exc()
            raise click.ClickException(message) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False),
              envvar="CUSTODES_CONFIG", help="Settings file (default: config/custodes.toml).")
@click.option("--broker", help="Kafka bootstrap servers host:port[,…] (env CUSTODES_BROKER).")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where SQLite and logs live (env CUSTODES_DATA_DIR).")
@click.option("--web-bind", help="Address the HTTP endpoints listen on (env CUSTODES_WEB_BIND).")
@click.option("--debug", is_flag=True, help="Show the traceback of a broker, database or file error too.")
@click.pass_context
def main(ctx: click.Context, config: Path | None, broker: str | None, data_dir: Path | None,
         web_bind: str | None, debug: bool) -> None:
    """Custodes: audit-log monitoring that flags suspicious data access and bulk exports."""
    ctx.obj = Context(config, {"broker": broker, "data_dir": data_dir, "web_bind": web_bind}, debug=debug)


@main.command("config")
@pass_ctx
def show_config(ctx: Context) -> None:
    """Print the effective settings (secrets masked)."""
    click.echo(orjson.dumps(ctx.settings().describe(), option=orjson.OPT_INDENT_2).decode())


def _register() -> None:
    from stream.cli import alerts, files, mapping, processes, reference, store, topics
    from stream.cli.rules import COMMANDS as rules_commands
    from stream.cli.synth import COMMANDS as synth_commands

    for command in (processes.run, processes.worker, processes.sink, files.ingest, files.replay,
                    alerts.alerts, alerts.detectors, store.db, store.retention, store.hold, topics.topics,
                    topics.deadletters, reference.reference, mapping.mapping, *synth_commands, *rules_commands):
        main.add_command(command)
    try:
        from review.cli import COMMANDS
    except ImportError:
        return
    for command in COMMANDS:
        main.add_command(command)


_register()
