"""``mailgate smtp``: the SMTP/LMTP receiver role, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

import click

from mailgate.cli.context import Context, utc_now

if TYPE_CHECKING:
    from mailgate.inbound.smtp.server import SmtpServer

pass_context = click.make_pass_decorator(Context)
log = logging.getLogger("mailgate.smtp")


@click.command()
@pass_context
def smtp(ctx: Context) -> None:
    """Receive mail by SMTP or LMTP on smtp.listen and turn it into tickets.

    Answers 250 only once a message is committed to the database. On SIGTERM or
    SIGINT it stops accepting, lets transactions in flight finish, and exits 0;
    a second signal cuts them off.
    """
    settings = ctx.settings
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    if not verbose:
        # The start-up line and warnings at logging.level.
        logging.getLogger("mailgate").setLevel(settings.logging.level.upper())
    # aiosmtpd logs every command at INFO (addresses of every message: only with -v)
    # and every line of every message at DEBUG (never: that is customers' text).
    logging.getLogger("mail.log").setLevel(logging.INFO if verbose else logging.WARNING)
    from mailgate.inbound.smtp.server import SmtpServer  # aiosmtpd only for this role

    server = SmtpServer(settings, ctx.store, now=utc_now)
    asyncio.run(_serve(server))


async def _serve(server: SmtpServer) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    log.info("%s", server.describe())
    await stop.wait()
    log.info("stopping: finishing %d connection(s) in flight", server.connection_count)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.abort)
    await server.stop(server.settings.smtp.data_timeout)
    log.info("stopped")
