"""The ``mailgate`` command: the only place that prints or sets exit codes."""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
from typing import Any, NoReturn

import click

from mailgate import __version__
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


# Every command: its name, the module and attribute that define it, and the line
# `mailgate --help` shows. Modules are imported only when their command runs, so
# `mailgate --help` does not pay for SQLAlchemy, FastAPI and the mail parser (issue
# 23: under 0.3 s). tests/test_cli_help.py checks each line against the command's own
# help, so the two cannot drift apart.
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "agents": ("people_cmds", "agents", "Agents: list, add, set away or inactive."),
    "api-tokens": ("web_cmds", "api_tokens", "Bearer tokens for integrations using the JSON API."),
    "check-config": (
        "setup_cmds",
        "check_config",
        "Validate the config file; print every problem as file:...",
    ),
    "customers": ("people_cmds", "customers", "Customer accounts: list, add."),
    "db": ("setup_cmds", "db", "Database schema migrations (Alembic) and upkeep."),
    "doctor": ("doctor_cmd", "doctor", "Check database, migrations, broker, IMAP logins,..."),
    "imap": ("imap_cmd", "imap", "Store new mail from the [[imap.mailboxes]], acknowledge..."),
    "inbound": ("inbound_cmds", "inbound", "Stored inbound messages: list, show, retry, accept."),
    "ingest": ("ingest_cmd", "ingest", "Store messages durably, then turn them into tickets."),
    "init": ("setup_cmds", "init", "Write a commented config file (default ./mailgate.toml)..."),
    "notices": ("notice_cmds", "notices", "List, send and retry outbound notices."),
    "responses": ("response_cmds", "responses_group", "Canned responses: add, list, show, remove."),
    "run": ("run_cmd", "run", "Run every role (run.roles: smtp, imap when mailboxes are..."),
    "sla": ("sla_cmd", "sla", "SLA targets and ticket dates (see [sla] in the config)."),
    "smtp": ("smtp_cmd", "smtp", "Receive mail by SMTP or LMTP on smtp.listen and turn it..."),
    "stats": ("stats_cmd", "stats", "Open tickets by status, type, priority, assignee,..."),
    "suppliers": (
        "people_cmds",
        "suppliers",
        "Suppliers, third parties attached to tickets: list, add.",
    ),
    "teams": ("people_cmds", "teams", "Teams and their assignment strategy: list, add."),
    "tickets": ("ticket_cmds", "tickets", "List, show and work on tickets."),
    "todos": ("todo_cmds", "todos", "To-dos: tasks on a ticket or standalone; add, list, done."),
    "web": ("web_cmds", "web", "Serve the portal and the JSON API (web.listen, default..."),
    "worker": ("worker_cmd", "worker", "Process inbound messages, send notices and run the SLA..."),
}


def load_command(name: str) -> click.Command:
    """Import the module that defines ``name`` and return its command."""
    module_name, attribute, _ = _COMMANDS[name]
    module = importlib.import_module(f"mailgate.cli.{module_name}")
    command: click.Command = getattr(module, attribute)
    if name == "agents":
        # `agents set-password` lives with the portal's commands.
        from mailgate.cli import web_cmds

        assert isinstance(command, click.Group)
        command.add_command(web_cmds.set_password)
    return command


class _Group(click.Group):
    """Loads commands on first use; turns mailgate's errors into one clear line and an
    exit code, never a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        if cmd_name not in self.commands:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short_help) for name, (_, _, short_help) in sorted(_COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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
    from mailgate.cli.context import Context

    logs.setup(LoggingSettings(level="WARNING"), verbose=verbose)
    ctx.obj = Context(config_path=config_path, verbose=verbose)
    ctx.call_on_close(ctx.obj.close)


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
