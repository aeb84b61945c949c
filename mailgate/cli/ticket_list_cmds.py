"""``tickets list`` and ``tickets search``: the queue views (``db.ticket_filters``) and
full-text search (``db.search``) from the command line."""

from __future__ import annotations

import click
from sqlalchemy import select

from mailgate.cli.acting import as_option
from mailgate.cli.context import Context, utc_now
from mailgate.cli.output import emit_json, emit_table, limit_option
from mailgate.core import sla
from mailgate.db import ticket_filters
from mailgate.db.models import Agent

pass_context = click.make_pass_decorator(Context)

LIST_COLUMNS = (
    ("number", "NUMBER"),
    ("status", "STATUS"),
    ("type", "TYPE"),
    ("priority", "PRIORITY"),
    ("assignee", "ASSIGNEE"),
    ("requester", "REQUESTER"),
    ("created_at", "CREATED"),
    ("subject", "SUBJECT"),
)


@click.command("list")
@click.option(
    "--status",
    metavar="STATUS",
    help="A status (e.g. Open), a category (new, active, waiting, on_hold, closed), "
    "open or all (the default).",
)
@click.option("--type", "type_", metavar="TYPE", help="Only tickets of this type.")
@click.option("--priority", metavar="PRIORITY", help="Only tickets of this priority.")
@click.option("--team", metavar="TEAM", help="The ticket's team or one of its departments; none.")
@click.option(
    "--assignee",
    metavar="AGENT",
    help="The owner's email; none (unassigned); me (owned or helped on by --as).",
)
@click.option("--tag", metavar="TAG", help="Only tickets with this tag.")
@click.option("--customer", metavar="ACCOUNT", help="Only this customer account's tickets.")
@click.option(
    "--due-before",
    metavar="WHEN",
    help="A follow-up or action-required date before WHEN (2d, 2026-01-31, ...).",
)
@click.option(
    "--sort",
    type=click.Choice(ticket_filters.SORTS),
    default="created",
    show_default=True,
    help="created: newest first; updated: latest change first; priority: most urgent "
    "first; due: soonest date first.",
)
@limit_option("tickets")
@as_option
@click.option("--json", "as_json", is_flag=True, help="A JSON array of objects, for scripts.")
@pass_context
def list_(
    ctx: Context,
    status: str | None,
    type_: str | None,
    priority: str | None,
    team: str | None,
    assignee: str | None,
    tag: str | None,
    customer: str | None,
    due_before: str | None,
    sort: str,
    limit: int,
    as_: str,
    as_json: bool,
) -> None:
    """Tickets, newest first (or --sort), of every status unless --status says."""
    now = utc_now()
    with ctx.store.transaction() as session:
        me = session.scalar(select(Agent.id).where(Agent.email == as_.strip().lower()))
        view = ticket_filters.TicketFilter(
            status=status,
            priority=priority,
            type=type_,
            team=team,
            assignee=assignee,
            tag=tag,
            customer=customer,
            due_before=sla.parse_when(due_before, now) if due_before else None,
            sort=sort,
            me_id=me,
        )
        rows = ticket_filters.summaries(session, view, ctx.settings.tickets, limit=limit)
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, LIST_COLUMNS, empty="no tickets")


@click.command()
@click.argument("query", nargs=-1, required=True)
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=0),
    help="The best N tickets; 0 for all.",
)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of objects, for scripts.")
@pass_context
def search(ctx: Context, query: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Tickets with every word of QUERY, best first.

    Looks in the subject, the requester, the participants' addresses, the attachments'
    names and the messages, internal notes too. A "quoted phrase" must stand together.
    Best first: found in the subject or requester, then in an address, then in a file
    name, then in a message; among equals, the newest."""
    with ctx.store.transaction() as session:
        rows = ticket_filters.summaries(
            session, ticket_filters.TicketFilter(), ctx.settings.tickets, limit=limit,
            query=" ".join(query),
        )  # fmt: skip
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, LIST_COLUMNS, empty="no tickets match")


LIST_COMMANDS = (list_, search)
