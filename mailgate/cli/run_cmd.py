"""``mailgate run``: every role of a one-box install under one supervisor."""

from __future__ import annotations

import sys

import click

from mailgate.cli.context import Context
from mailgate.core import config
from mailgate.core.errors import EX_CONFIG
from mailgate.core.settings import Settings
from mailgate.ops.supervisor import RestartPolicy, Role, Supervisor

pass_context = click.make_pass_decorator(Context)
# The worker processes what the receivers stored, in the background: at nice 10 it lets a
# receiver answer its clients first when both want the CPU, and still has the CPU to
# itself whenever the receivers are idle (issue 23: acknowledgements off the processing
# path).
ROLE_NICE = {"worker": 10}


def chosen_roles(settings: Settings) -> list[str]:
    """``run.roles`` in order, without imap when no mailbox is configured."""
    return [r for r in settings.run.roles if r != "imap" or settings.imap.mailboxes]


def role_argv(role: str, config_arg: list[str], verbose: bool) -> tuple[str, ...]:
    return (sys.executable, "-m", "mailgate", *config_arg, *(["-v"] if verbose else []), role)


@click.command()
@pass_context
def run(ctx: Context) -> None:
    """Run every role (run.roles: smtp, imap when mailboxes are configured, worker,
    web) as child processes, restarting one that dies.

    SIGTERM or SIGINT drains: each role gets SIGTERM, finishes its work in hand,
    and run exits 0. A role that keeps dying stops everything and run exits 1; so
    does, at once, a role that cannot start for a reason a restart cannot cure
    (a port in use, a bad setting, a missing secret: its one line says which).
    If run itself is killed (SIGKILL), its roles die with it (Linux).
    """
    settings = ctx.settings
    ctx.service_logging()
    _ = ctx.store  # migrate and sync the directory once, before any role starts
    ctx.store.engine.dispose()
    path = config.resolve_path(ctx.config_path)
    config_arg = ["--config", str(path.resolve())] if path is not None else []
    names = chosen_roles(settings)
    r = settings.run
    policy = RestartPolicy(
        max_deaths=r.max_deaths,
        window=float(r.death_window_seconds),
        base_delay=r.restart_delay_ms / 1000,
        max_delay=max(r.restart_delay_ms, r.restart_max_delay_ms) / 1000,
    )
    supervisor = Supervisor(
        [
            Role(name, role_argv(name, config_arg, ctx.verbose), nice=ROLE_NICE.get(name, 0))
            for name in names
        ],
        policy=policy,
        stop_timeout=float(r.stop_timeout_seconds),
        # A role exits EX_CONFIG for a ConfigError (and click for a usage error).
        fatal_codes=frozenset({EX_CONFIG}),
    )
    supervisor.install_signal_handlers()
    click.echo(f"mailgate run: roles {', '.join(names)}", err=True)
    code = supervisor.run()
    if code and supervisor.fatal_code is not None:
        raise SystemExit(1)  # the role's own line on stderr said why
    if code:
        click.echo(
            f"mailgate: role {supervisor.failed} exited more than {r.max_deaths} times "
            f"within {r.death_window_seconds}s; stopped every role",
            err=True,
        )
        raise SystemExit(1)
