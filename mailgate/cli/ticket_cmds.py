"""``mailgate tickets``: agents' and operators' view of the tickets."""

from __future__ import annotations

import click

from mailgate import queries
from mailgate.cli.context import Context
from mailgate.cli.output import emit_json, emit_table

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


@click.group()
def tickets() -> None:
    """List and show tickets."""


@tickets.command("list")
@click.option("--status", help="Only tickets in this status (e.g. New, Open).")
@click.option("--type", "type_", help="Only tickets of this type (e.g. General).")
@click.option("--limit", default=50, show_default=True, help="Newest N tickets; 0 for all.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of objects, for scripts.")
@pass_context
def list_(ctx: Context, status: str | None, type_: str | None, limit: int, as_json: bool) -> None:
    """Tickets, newest first."""
    if limit < 0:
        raise click.BadParameter("must be 0 (all) or more", param_hint="--limit")
    with ctx.store.transaction() as session:
        rows = queries.list_tickets(session, status=status, type_=type_, limit=limit)
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, LIST_COLUMNS, empty="no tickets")


@tickets.command()
@click.argument("number", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@pass_context
def show(ctx: Context, number: int, as_json: bool) -> None:
    """One ticket with its messages, attachments and history."""
    with ctx.store.transaction() as session:
        ticket = queries.show_ticket(session, number)
    if as_json:
        emit_json(ticket)
        return
    _print_ticket(ticket)


def _print_ticket(t: dict) -> None:  # type: ignore[type-arg]
    click.echo(f"Ticket #{t['number']}: {t['subject']}")
    for key in (
        "status",
        "type",
        "priority",
        "team",
        "assignee",
        "requester",
        "customer",
        "created_at",
    ):
        click.echo(f"  {key:<10} {t[key] if t[key] is not None else '-'}")
    if t["links"]:
        click.echo("  links      " + ", ".join(f"#{x['number']} ({x['kind']})" for x in t["links"]))
    for m in t["messages"]:
        flag = " [received after close]" if m["after_close"] else ""
        click.echo(
            f"\n--- message {m['id']} {m['direction']} from {m['from']} at {m['created_at']}{flag}"
        )
        click.echo(f"Subject: {m['subject']}")
        click.echo("")
        click.echo(m["body"].rstrip() or "(no text)")
        for a in m["attachments"]:
            note = f" (omitted: {a['omitted']})" if a["omitted"] else ""
            click.echo(
                f"  [attachment] {a['filename']} {a['content_type']} {a['size']} bytes{note}"
            )
    click.echo("\nHistory:")
    for e in t["history"]:
        change = f" {e['field']}: {e['old']} -> {e['new']}" if e["field"] else ""
        click.echo(f"  {e['at']}  {e['actor']}  {e['action']}{change}")
