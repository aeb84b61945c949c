"""``mailgate doctor``: check the installation, one line per check."""

from __future__ import annotations

import click

from mailgate.cli.context import Context
from mailgate.core import config
from mailgate.ops import doctor as checks


@click.command()
@click.option(
    "--network",
    is_flag=True,
    help="Also connect to each chat channel's and webhook's host (TCP, and TLS for "
    "https); no message is sent.",
)
@click.pass_obj
def doctor(ctx: Context, network: bool) -> None:
    """Check database, migrations, broker, IMAP logins, smarthost, templates, secret,
    and the variables and URLs of chat channels and webhooks; one line per check, exit 1
    if any fails."""
    path = config.resolve_path(ctx.config_path)
    settings = config.load(path, check=False)
    failed = 0
    for check in checks.run_checks(settings, from_file=path is not None, network=network):
        click.echo(check.line())
        failed += not check.ok
    if failed:
        click.echo(f"mailgate doctor: {failed} check(s) failed", err=True)
        raise SystemExit(1)
