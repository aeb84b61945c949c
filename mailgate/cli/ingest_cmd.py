"""``mailgate ingest``: store messages from a file, stdin, an mbox or a Maildir, then process them.

Exit codes follow sysexits.h so an MTA pipe can use it directly: 0 stored,
65 bad input (bounce), 75 temporary failure (retry later).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from mailgate.cli.context import Context, utc_now
from mailgate.core.errors import MailgateError, PermanentFailure, TemporaryFailure
from mailgate.db.rejection_counts import RejectionCounter
from mailgate.inbound.files import FileMessage, maildir_messages, mbox_messages
from mailgate.inbound.handoff import hand_off
from mailgate.inbound.intake import Envelope, accept, refusal_reason
from mailgate.jobs import is_embedded

pass_context = click.make_pass_decorator(Context)


@click.command()
@click.argument("file", required=False, metavar="[FILE|-]")
@click.option(
    "--mbox",
    "mbox_path",
    type=click.Path(path_type=Path),
    help="Import every message of an mbox file.",
)
@click.option(
    "--maildir",
    "maildir_path",
    type=click.Path(path_type=Path),
    help="Import every message of a Maildir.",
)
@click.option("--sender", default="", help="Envelope sender (as an MTA pipe passes it).")
@click.option("--recipient", "recipients", multiple=True, help="Envelope recipient; repeatable.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Parse an mbox or Maildir, and send its notices, in this many processes "
    "(one per core helps).",
)
@pass_context
def ingest(
    ctx: Context,
    file: str | None,
    mbox_path: Path | None,
    maildir_path: Path | None,
    sender: str,
    recipients: tuple[str, ...],
    quiet: bool,
    processes: int,
) -> None:
    """Store messages durably, then turn them into tickets.

    FILE is one RFC 5322 message; - or nothing reads standard input. An mbox or a
    Maildir is stored and processed in groups of 100 messages per transaction.
    """
    chosen = [x for x in (file, mbox_path, maildir_path) if x is not None]
    if len(chosen) > 1:
        raise click.UsageError("give one of FILE, --mbox or --maildir")
    envelope = Envelope(mail_from=sender, rcpt_to=recipients)
    refused = RejectionCounter("ingest", utc_now)
    try:
        if mbox_path is not None or maildir_path is not None:
            count, messages = (
                mbox_messages(mbox_path)
                if mbox_path is not None
                else maildir_messages(maildir_path)  # type: ignore[arg-type]
            )
            _bulk(ctx, count, messages, envelope, quiet=quiet, refused=refused, processes=processes)
        else:
            raw = _read_one(file)
            try:
                _single(ctx, raw, envelope, quiet=quiet)
            except PermanentFailure as exc:
                refused.add(refusal_reason(exc))
                raise
    except TemporaryFailure:
        raise
    except MailgateError:
        raise
    except Exception as exc:
        # Anything unexpected is a reason to try again later, never to bounce mail.
        raise TemporaryFailure(f"could not store the message: {type(exc).__name__}: {exc}") from exc
    finally:
        if refused.unwritten:
            refused.flush_quietly(ctx.store)


def _read_one(file: str | None) -> bytes:
    if file in (None, "-"):
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except FileNotFoundError:
        raise PermanentFailure(f"{file}: no such file") from None
    except IsADirectoryError:
        raise PermanentFailure(f"{file}: is a directory (use --maildir for a Maildir)") from None
    except PermissionError:
        raise PermanentFailure(f"{file}: permission denied") from None


def _single(ctx: Context, raw: bytes, envelope: Envelope, *, quiet: bool) -> None:
    settings = ctx.settings
    accepted = accept(
        ctx.store,
        raw,
        source="ingest",
        envelope=envelope,
        max_bytes=settings.smtp.max_message_bytes,
        now=utc_now,
    )
    result = hand_off(ctx.store, accepted.inbound_id, settings=settings, now=utc_now, raw=raw)
    if quiet:
        return
    if accepted.duplicate:
        click.echo(f"inbound #{accepted.inbound_id}: already stored, nothing added")
    elif result is None:
        click.echo(f"inbound #{accepted.inbound_id}: stored; processing will be retried")
    else:
        ticket = f", ticket #{result.ticket_number}" if result.ticket_number else ""
        reason = f" ({result.error})" if result.error else ""
        click.echo(
            f"inbound #{accepted.inbound_id}: {result.state}, {result.outcome}{ticket}{reason}"
        )


def _bulk(
    ctx: Context,
    count: int,
    messages: Iterator[FileMessage],
    envelope: Envelope,
    *,
    quiet: bool,
    refused: RejectionCounter,
    processes: int,
) -> None:
    from mailgate.inbound.bulk import import_messages  # only the bulk path needs it

    settings = ctx.settings
    # A bar only for a person at a terminal: from cron or a script, click would print its
    # label alone, and cron mails every line a job writes.
    hidden = quiet or not sys.stderr.isatty()
    with click.progressbar(length=count, label="ingesting", file=sys.stderr, hidden=hidden) as bar:
        totals = import_messages(
            ctx.store,
            messages,
            settings=settings,
            envelope=envelope,
            now=utc_now,
            refused=refused,
            processes=processes,
            progress=bar.update,
        )
    for line in totals.reasons:
        click.echo(f"mailgate: refused {line}", err=True)
    if not quiet:
        made = "queued" if not is_embedded(settings) else _counted(totals.tickets, "new ticket")
        failed = f", {totals.failed} failed (see `mailgate inbound list`)" if totals.failed else ""
        click.echo(
            f"{_counted(count, 'message')}: {totals.stored} stored ({made}{failed}), "
            f"{totals.duplicate} already stored, {totals.refused} refused"
        )
    if totals.refused and not totals.stored and not totals.duplicate:
        raise SystemExit(65)


def _counted(count: int, thing: str) -> str:
    """``count`` of ``thing``: "1 message", "2 messages"."""
    return f"{count} {thing}" if count == 1 else f"{count} {thing}s"
