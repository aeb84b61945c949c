"""``mailgate imap``: poll the configured IMAP mailboxes, once or until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

import click

from mailgate.cli.context import Context, utc_now
from mailgate.core.errors import EX_TEMPFAIL, ConfigError, TemporaryFailure
from mailgate.core.settings import ImapMailbox, Settings
from mailgate.db.store import Store

if TYPE_CHECKING:
    from mailgate.inbound.imap.poller import ImapPoller

pass_context = click.make_pass_decorator(Context)
log = logging.getLogger("mailgate.inbound.imap.poller")


@click.command()
@click.option("--once", is_flag=True, help="One pass over every mailbox, then exit.")
@click.option(
    "--mailbox", "names", multiple=True, metavar="NAME", help="Only this mailbox; repeatable."
)
@pass_context
def imap(ctx: Context, once: bool, names: tuple[str, ...]) -> None:
    """Store new mail from the [[imap.mailboxes]], acknowledge it, make tickets.

    Without --once, watches every mailbox (IDLE where offered) until SIGTERM or
    Ctrl-C. With --once, exits 0 when every mailbox was read, 75 when one could
    not be reached or refused the login.
    """
    settings = ctx.settings
    boxes = _chosen(settings, names)
    store = ctx.store
    ctx.service_logging()
    if once:
        _once(settings, store, boxes)
    else:
        _forever(settings, store, boxes)


def _chosen(settings: Settings, names: tuple[str, ...]) -> tuple[ImapMailbox, ...]:
    boxes = settings.imap.mailboxes
    if not boxes:
        raise ConfigError([f"{settings.source}: imap.mailboxes: none configured"])
    if not names:
        return boxes
    known = {box.name for box in boxes}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.UsageError(
            f"no mailbox named {', '.join(map(repr, unknown))} (known: {', '.join(sorted(known))})"
        )
    return tuple(box for box in boxes if box.name in names)


def _poller(box: ImapMailbox, settings: Settings, store: Store) -> ImapPoller:
    # Imported here so `mailgate --help` does not load imapclient.
    from mailgate.inbound.imap.poller import ImapPoller

    return ImapPoller(box, store=store, settings=settings, now=utc_now)


def _once(settings: Settings, store: Store, boxes: tuple[ImapMailbox, ...]) -> None:
    failed = 0
    for box in boxes:
        poller = _poller(box, settings, store)
        try:
            result = poller.run_once()
        except TemporaryFailure as exc:
            failed += 1
            click.echo(f"mailgate: {exc}", err=True)
            continue
        if result.held_by:
            click.echo(f"mailbox {box.name}: skipped, another poller is active ({result.held_by})")
            continue
        click.echo(
            f"mailbox {box.name}: {result.found} new, {result.stored} stored, "
            f"{result.duplicates} already stored, {result.refused} left in {box.folder!r}"
        )
    if failed:
        raise SystemExit(EX_TEMPFAIL)


def _forever(settings: Settings, store: Store, boxes: tuple[ImapMailbox, ...]) -> None:
    stop = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: stopping after the message in hand", signal.Signals(signum).name)
        stop.set()
        for s in signals:  # a second signal stops at once
            signal.signal(s, signal.SIG_DFL)

    previous = {s: signal.signal(s, on_signal) for s in signals}
    threads = [
        threading.Thread(
            target=_poller(box, settings, store).run_forever,
            args=(stop,),
            name=f"imap-{box.name}",
            daemon=True,
        )
        for box in boxes
    ]
    log.info("watching %d mailbox(es): %s", len(boxes), ", ".join(b.name for b in boxes))
    try:
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            # Short joins keep the main thread free to run the signal handler.
            for thread in threads:
                thread.join(timeout=0.5)
    finally:
        stop.set()
        for s, handler in previous.items():
            signal.signal(s, handler)
    log.info("stopped")
