"""The ``mailgate`` command: the only place that prints or sets exit codes."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from mailgate import __version__
from mailgate.cli.context import Context
from mailgate.errors import EX_SOFTWARE, ConfigError, MailgateError


class _Group(click.Group):
    """Turns mailgate's errors into one clear line and an exit code; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
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
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        # mail-parser logs every odd MIME part at WARNING; defects are recorded instead.
        logging.getLogger("mailparser").setLevel(logging.CRITICAL)
    ctx.obj = Context(config_path=config_path)


def _register() -> None:
    from mailgate.cli import ingest_cmd, setup_cmds, smtp_cmd, ticket_cmds

    for command in (*setup_cmds.COMMANDS, ingest_cmd.ingest, ticket_cmds.tickets):
        cli.add_command(command)
    cli.add_command(smtp_cmd.smtp)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="mailgate")
