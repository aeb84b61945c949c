"""The ``mailgate`` command: the only place that prints or sets exit codes."""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Any, NoReturn

import click

from mailgate import __version__
from mailgate.cli.context import Context
from mailgate.core.errors import EX_SOFTWARE, ConfigError, MailgateError
from mailgate.core.settings import LoggingSettings
from mailgate.ops import logs


def _closed_pipe() -> NoReturn:
    """Whoever read our output stopped (``mailgate tickets list | head -1``): that is
    not an error. Later writes, and the flush at exit, go to /dev/null (the Python docs'
    "Note on SIGPIPE"), and the command ends quietly with 0."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


class _Group(click.Group):
    """Turns mailgate's errors into one clear line and an exit code; never a traceback."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)  # prints --help and --version
        except BrokenPipeError:
            _closed_pipe()

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _closed_pipe()
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(f"mailgate: {problem}", err=True)
            sys.exit(exc.exit_code)
        except MailgateError as exc:
            click.echo(f"mailgate: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("mailgate: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            logging.getLogger("mailgate").debug("internal error", exc_info=True)
            click.echo(
                f"mailgate: internal error: {type(exc).__name__}: {exc} (run with -v for details)",
                err=True,
            )
            sys.exit(EX_SOFTWARE)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (else $MAILGATE_CONFIG, else ./mailgate.toml, else built-in defaults).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug details to stderr.")
@click.version_option(__version__, prog_name="mailgate")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """mailgate: email-to-ticket gateway.

    Receives support mail, stores every message durably, threads it into
    tickets, and sends content-free notices that point to the portal.
    """
    # Until the config is read, only warnings; commands that run as services call
    # logs.setup() with the [logging] settings once they have them.
    logs.setup(LoggingSettings(level="WARNING"), verbose=verbose)
    ctx.obj = Context(config_path=config_path, verbose=verbose)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    from mailgate.cli import (
        doctor_cmd,
        imap_cmd,
        inbound_cmds,
        ingest_cmd,
        notice_cmds,
        people_cmds,
        response_cmds,
        run_cmd,
        setup_cmds,
        sla_cmd,
        smtp_cmd,
        stats_cmd,
        ticket_cmds,
        web_cmds,
        worker_cmd,
    )

    for command in (
        *setup_cmds.COMMANDS,
        doctor_cmd.doctor,
        ingest_cmd.ingest,
        ticket_cmds.tickets,
        *response_cmds.COMMANDS,
        stats_cmd.stats,
        *sla_cmd.COMMANDS,
        *notice_cmds.COMMANDS,
        imap_cmd.imap,
        run_cmd.run,
        smtp_cmd.smtp,
        worker_cmd.worker,
        inbound_cmds.inbound,
        *people_cmds.COMMANDS,
        *web_cmds.COMMANDS,
    ):
        cli.add_command(command)
    # `agents set-password` joins the directory's `agents` group.
    web_cmds.attach_set_password(cli)


_register()


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="mailgate")
    finally:
        try:
            sys.stdout.flush()  # here, not at exit, where a closed pipe cannot be caught
        except BrokenPipeError:
            _closed_pipe()
        # The command is done (connections closed, logs flushed by atexit); without
        # this, the collector's passes over every object at interpreter exit take
        # 0.2-0.5 s, which a role that cannot start made `mailgate run` wait.
        gc.freeze()
