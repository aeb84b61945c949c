"""``mailgate tickets reply|note``: an agent's answer to the requester (with the status
to set in the same step) and an internal note.

Each calls the write side (``tickets.messages``, ``tickets.canned_responses``), the
same functions as the portal and the API: the ticket is locked, a closed ticket refuses
a reply, every message is a history event, the requester gets one content-free notice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

import click

from mailgate.cli.acting import actor_for, as_option
from mailgate.cli.context import Context, utc_now
from mailgate.db.models import TicketMessage

pass_context = click.make_pass_decorator(Context)
file_option = click.option(
    "--file", "source", type=click.File("r"), required=True, help="The text; - for stdin."
)


@click.command()
@click.argument("number", type=int)
@click.option("--file", "source", type=click.File("r"), help="The text; - for stdin.")
@click.option(
    "--response",
    metavar="NAME",
    help="Reply with canned response NAME, placeholders filled in (instead of --file).",
)
@click.option(
    "--status",
    metavar="STATUS",
    help="Move the ticket to STATUS (a configured one, e.g. Waiting) in the same step.",
)
@click.option(
    "--to-supplier",
    "to_supplier",
    metavar="NAME",
    help="Write to supplier NAME, attached to the ticket, instead of the requester.",
)
@as_option
@pass_context
def reply(
    ctx: Context,
    number: int,
    source: TextIO | None,
    response: str | None,
    status: str | None,
    to_supplier: str | None,
    as_: str,
) -> None:
    """Answer the requester of ticket NUMBER; they get a content-free notice.

    The text comes from --file or from a canned response (--response), not both.
    --status sets the status in the same step ("send and set to Waiting"): the reply and
    the change are made together or not at all, and the requester gets one notice, the
    reply's, naming the new status. A customer's answer to a ticket set to a waiting
    status returns it to the status it had before (Open when that was New).

    --to-supplier writes to an attached supplier instead (`tickets suppliers`): agents
    and the supplier's contacts see it, the customer does not; each of its addresses
    gets a content-free notice; the status and the first response do not move."""
    from mailgate.tickets import canned_responses as responses
    from mailgate.tickets import messages

    if (source is None) == (response is None):
        raise click.UsageError("give the text with exactly one of --file or --response")
    body = source.read() if source is not None else ""
    if to_supplier is not None:
        if source is None or status is not None:
            raise click.UsageError("--to-supplier takes the text from --file, and no --status")
        _to_supplier(ctx, number, to_supplier, body, as_)
        return
    with ctx.store.transaction() as session:
        common: dict[str, Any] = {
            "settings": ctx.settings,
            "number": number,
            "actor": actor_for(session, as_),
            "at": utc_now(),
            "via": "cli",
            "status": status,
        }
        if response is not None:
            message = responses.reply(session, name=response, **common)
        else:
            message = messages.reply(session, body=body, **common)
        message_id = message.id
        shown = message.ticket.status if status is not None else None
    moved = f", ticket is {shown}" if shown is not None else ""
    click.echo(f"ticket #{number}: reply {message_id} stored, requester notified{moved}")


def _to_supplier(ctx: Context, number: int, supplier: str, body: str, as_: str) -> None:
    from mailgate.tickets import suppliers

    with ctx.store.transaction() as session:
        message = suppliers.reply_to_supplier(
            session,
            settings=ctx.settings,
            number=number,
            actor=actor_for(session, as_),
            supplier=supplier,
            body=body,
            at=utc_now(),
            via="cli",
        )
        message_id = message.id
    click.echo(f"ticket #{number}: message {message_id} to supplier {supplier} stored, notified")


@click.command()
@click.argument("number", type=int)
@file_option
@as_option
@pass_context
def note(ctx: Context, number: int, source: TextIO, as_: str) -> None:
    """Add an internal note (agents only, no notice) to ticket NUMBER."""
    from mailgate.tickets import messages

    message_id = _write_message(ctx, messages.note, number, source, as_)
    click.echo(f"ticket #{number}: note {message_id} stored")


def _write_message(
    ctx: Context, action: Callable[..., TicketMessage], number: int, source: TextIO, as_: str
) -> int:
    """Store a reply or note read from ``source`` through the write side; its id."""
    body = source.read()
    with ctx.store.transaction() as session:
        message = action(
            session,
            settings=ctx.settings,
            number=number,
            actor=actor_for(session, as_),
            body=body,
            at=utc_now(),
            via="cli",
        )
        return message.id


MESSAGE_COMMANDS = (reply, note)
