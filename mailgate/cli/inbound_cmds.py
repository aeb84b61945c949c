"""``mailgate inbound``: the operator's view of the intake ledger, and its retries."""

from __future__ import annotations

import getpass
import sys

import click

from mailgate.cli.context import Context, utc_now
from mailgate.cli.output import emit_json, emit_table, limit_option
from mailgate.core.states import InboundState
from mailgate.db import mail_queries, requeue
from mailgate.jobs import enqueue_inbound, is_embedded
from mailgate.tickets.mail import process

pass_context = click.make_pass_decorator(Context)

STATES = tuple(s.value for s in InboundState)
LIST_COLUMNS = (
    ("id", "ID"),
    ("state", "STATE"),
    ("outcome", "OUTCOME"),
    ("attempts", "TRIES"),
    ("ticket", "TICKET"),
    ("source", "SOURCE"),
    ("received_at", "RECEIVED"),
    ("last_error", "ERROR/REASON"),
)


@click.group()
def inbound() -> None:
    """Stored inbound messages: list, show, retry, accept."""


@inbound.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only messages in this state.")
@click.option("--outcome", help="Only this outcome (e.g. new_ticket, refused_policy).")
@limit_option("messages")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of objects, for scripts.")
@pass_context
def list_(ctx: Context, state: str | None, outcome: str | None, limit: int, as_json: bool) -> None:
    """Inbound messages, newest first."""
    with ctx.store.transaction() as session:
        rows = mail_queries.list_inbound(session, state=state, outcome=outcome, limit=limit)
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, LIST_COLUMNS, empty="no inbound messages")


@inbound.command()
@click.argument("inbound_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.option("--raw", is_flag=True, help="Write the message exactly as received.")
@pass_context
def show(ctx: Context, inbound_id: int, as_json: bool, raw: bool) -> None:
    """One inbound message: state, outcome, error, headers, notices."""
    with ctx.store.transaction() as session:
        if raw:
            row = mail_queries.raw_inbound(session, inbound_id)
            sys.stdout.buffer.write(row)
            return
        item = mail_queries.show_inbound(session, inbound_id)
    if as_json:
        emit_json(item)
        return
    for key in (
        "id",
        "source",
        "state",
        "outcome",
        "ticket",
        "attempts",
        "next_attempt_at",
        "last_error",
        "accepted_by",
        "envelope_from",
        "received_at",
        "processed_at",
        "size",
    ):
        value = item[key]
        click.echo(f"{key:<16} {value if value not in (None, '') else '-'}")
    for notice in item["notices"]:
        note = f" ({notice['last_error']})" if notice["last_error"] else ""
        click.echo(
            f"notice #{notice['id']}: {notice['kind']} to {notice['recipient']}, "
            f"{notice['state']}{note}"
        )
    click.echo("\n" + item["headers"])


def _dispatch(ctx: Context, inbound_id: int) -> str:
    """Process now (embedded queue) or hand to the broker; a line saying which."""
    settings = ctx.settings
    if not is_embedded(settings):
        if enqueue_inbound(settings, inbound_id):
            return f"inbound #{inbound_id}: queued"
        return (
            f"inbound #{inbound_id}: reset; the broker is unreachable, the reconciler will queue it"
        )
    try:
        result = process(ctx.store, inbound_id, settings=settings, now=utc_now)
    except Exception as exc:  # noqa: BLE001 - recorded on the row by process()
        return f"inbound #{inbound_id}: failed again: {type(exc).__name__}: {exc}"
    ticket = f", ticket #{result.ticket_number}" if result.ticket_number else ""
    return f"inbound #{inbound_id}: {result.state}, {result.outcome}{ticket}"


@inbound.command()
@click.argument("inbound_id", type=int, required=False)
@click.option("--all-failed", is_flag=True, help="Every message in state failed.")
@pass_context
def retry(ctx: Context, inbound_id: int | None, all_failed: bool) -> None:
    """Try a failed message again (its attempt count starts over)."""
    if (inbound_id is None) == (not all_failed):
        raise click.UsageError("give one ID or --all-failed")
    with ctx.store.transaction() as session:
        ids = requeue.failed_ids(session) if inbound_id is None else [inbound_id]
        for item in ids:
            requeue.retry(session, item)
    if not ids:
        click.echo("no failed inbound messages")
    for item in ids:
        click.echo(_dispatch(ctx, item))


@inbound.command()
@click.argument("inbound_id", type=int)
@click.option("--by", default="", help="Who accepts it, for the ticket history (default: you).")
@pass_context
def accept(ctx: Context, inbound_id: int, by: str) -> None:
    """Open the ticket for a message the intake policy refused."""
    who = by or f"cli:{getpass.getuser()}"
    with ctx.store.transaction() as session:
        requeue.accept(session, inbound_id, by=who)
    click.echo(_dispatch(ctx, inbound_id))
