"""``mailgate tickets``: agents' and operators' view of the tickets, and their work on them."""

from __future__ import annotations

from typing import TextIO

import click

from mailgate.cli.acting import actor_for as _actor
from mailgate.cli.acting import as_option
from mailgate.cli.context import Context, utc_now
from mailgate.cli.output import emit_json
from mailgate.cli.ticket_field_cmds import FIELD_COMMANDS
from mailgate.cli.ticket_involvement_cmds import INVOLVEMENT_COMMANDS
from mailgate.cli.ticket_list_cmds import LIST_COMMANDS
from mailgate.cli.ticket_merge_cmd import merge
from mailgate.cli.ticket_message_cmds import MESSAGE_COMMANDS
from mailgate.core import sla
from mailgate.db import queries
from mailgate.db.models import Agent

# The write side (and through it the mail parser and the notice templates) is imported
# inside the commands that change tickets: `tickets list` and `tickets show` stay
# under 0.6 s (issue 23).

pass_context = click.make_pass_decorator(Context)


@click.group()
def tickets() -> None:
    """List, show and work on tickets."""


@tickets.command()
@click.argument("number", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@pass_context
def show(ctx: Context, number: int, as_json: bool) -> None:
    """One ticket with its messages, attachments and history."""
    with ctx.store.transaction() as session:
        ticket = queries.show_ticket(session, number, sla.Targets.from_settings(ctx.settings.sla))
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
    for key, label in (
        ("first_response_due_at", "first response due"),
        ("resolution_due_at", "resolution due"),
        ("follow_up_at", "follow-up"),
        ("action_required_at", "action required"),
    ):
        if t[key] is not None:
            click.echo(f"  {label:<18} {t[key]}")
    for e in t["sla_events"]:
        click.echo(f"  {sla.SUMMARIES[e['kind']]}: due {e['due_at']}, fired {e['fired_at']}")
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
    if t.get("activities"):
        click.echo("\nTime logged:")
        for a in t["activities"]:
            text = f"  {a['text']}" if a["text"] else ""
            click.echo(f"  {a['at']}  {a['actor']}  {a['type']} {a['minutes']} min{text}")
    click.echo("\nHistory:")
    for e in t["history"]:
        change = f" {e['field']}: {e['old']} -> {e['new']}" if e["field"] else ""
        click.echo(f"  {e['at']}  {e['actor']}  {e['action']}{change}")


# Agents' work: each command calls the same write-side function as the portal,
# so history, notices and "closing is final" behave the same everywhere.


def _read_body(source: TextIO) -> str:
    return source.read()


@tickets.command()
@click.option("--requester", required=True, metavar="ADDRESS", help="The customer's address.")
@click.option("--name", "requester_name", default="", help="The customer's display name.")
@click.option("--subject", required=True, metavar="TEXT", help="The ticket's subject.")
@click.option("--file", "source", type=click.File("r"), help="The first message; - for stdin.")
@click.argument("dash", required=False, metavar="[-]")
@click.option("--type", "type_", metavar="T", help="A configured type (default: defaults.type).")
@click.option("--priority", metavar="P", help="A configured priority (default: defaults.priority).")
@click.option("--team", metavar="TEAM", help="Its team (default: the rules', else defaults.team).")
@click.option(
    "--assignee", metavar="AGENT", help="An active agent (default: the team's assignment)."
)
@as_option
@click.option("--json", "as_json", is_flag=True, help="Print the new ticket as a JSON object.")
@pass_context
def create(
    ctx: Context,
    requester: str,
    requester_name: str,
    subject: str,
    source: TextIO | None,
    dash: str | None,
    type_: str | None,
    priority: str | None,
    team: str | None,
    assignee: str | None,
    as_: str,
    as_json: bool,
) -> None:
    """Open a ticket for a customer; prints its number.

    The text comes from --file F, or from standard input with - (or --file -). Staff
    open tickets for anyone: intake.policy does not apply; the rules and the assignment
    do, as for mail, except where --team or --assignee chose; the requester gets the
    (content-free) acknowledgement and a chosen assignee the "assigned" notice."""
    from mailgate.tickets import opening

    if dash not in (None, "-") or (source is not None and dash is not None):
        raise click.UsageError("give the text with exactly one of --file F or -")
    if source is None and dash is None:
        raise click.UsageError("give the text with --file F, or - to read standard input")
    body = _read_body(source if source is not None else click.get_text_stream("stdin"))
    with ctx.store.transaction() as session:
        actor = _actor(session, as_)
        new = opening.typed_ticket(
            requester=requester,
            requester_name=requester_name,
            subject=subject,
            body=body,
            via="cli",
            type_=type_,
            priority=priority,
            actor=actor.label,
            by_staff=True,
            team=team,
            assignee=assignee,
        )
        ticket = opening.open_ticket(session, new, settings=ctx.settings, at=utc_now()).ticket
        number = ticket.number
        assert number is not None
        shown = queries.show_ticket(session, number) if as_json else None
    if shown is not None:
        emit_json(shown)
    else:
        click.echo(number)


@tickets.command()
@click.argument("number", type=int)
@click.argument("agent")
@as_option
@pass_context
def assign(ctx: Context, number: int, agent: str, as_: str) -> None:
    """Give ticket NUMBER to AGENT (an active agent's email; "none" unassigns it)."""
    from mailgate.tickets import changes

    assignee = None if agent.lower() == "none" else agent
    with ctx.store.transaction() as session:
        ticket = changes.assign(
            session,
            settings=ctx.settings,
            number=number,
            actor=_actor(session, as_),
            assignee=assignee,
            at=utc_now(),
        )
        agent_row = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
        shown = agent_row.email if agent_row else "nobody"
    click.echo(f"ticket #{number} assigned to {shown}")


@tickets.command()
@click.argument("number", type=int)
@click.argument("status")
@as_option
@pass_context
def status(ctx: Context, number: int, status: str, as_: str) -> None:
    """Move ticket NUMBER to STATUS (a configured status, e.g. Open, Waiting).

    A closed ticket never changes: that is refused."""
    from mailgate.tickets import changes

    with ctx.store.transaction() as session:
        changes.change_status(
            session,
            settings=ctx.settings,
            number=number,
            actor=_actor(session, as_),
            status=status,
            at=utc_now(),
        )
    click.echo(f"ticket #{number} is {status}")


@tickets.command()
@click.argument("number", type=int)
@as_option
@pass_context
def close(ctx: Context, number: int, as_: str) -> None:
    """Close ticket NUMBER for good (a closed ticket never changes again)."""
    from mailgate.tickets import changes

    with ctx.store.transaction() as session:
        ticket = changes.close(
            session, settings=ctx.settings, number=number, actor=_actor(session, as_), at=utc_now()
        )
        shown = ticket.status
    click.echo(f"ticket #{number} is {shown}")


@tickets.command()
@click.argument("number", type=int)
@click.argument("other", type=int)
@click.option(
    "--kind",
    default="related",
    show_default=True,
    metavar="K",
    help='A link kind of tickets.link_kinds (e.g. "duplicate of"), or its reverse.',
)
@as_option
@pass_context
def link(ctx: Context, number: int, other: int, kind: str, as_: str) -> None:
    """Link tickets NUMBER and OTHER both ways (allowed on closed tickets): NUMBER gets
    KIND, OTHER its reverse ("duplicate of" / "duplicated by")."""
    from mailgate.tickets import changes

    with ctx.store.transaction() as session:
        changes.link(
            session,
            number=number,
            other_number=other,
            actor=_actor(session, as_),
            at=utc_now(),
            kind=kind,
            settings=ctx.settings,
        )
        forward, reverse = ctx.settings.tickets.link_pair(kind) or (kind, kind)
    click.echo(f"ticket #{number} {forward} #{other}; #{other} {reverse} #{number}")


@tickets.command()
@click.argument("number", type=int)
@click.option("--follow-up", "follow_up", metavar="WHEN", help="Follow-up required date.")
@click.option("--action-required", "action_required", metavar="WHEN", help="Action required date.")
@as_option
@pass_context
def due(
    ctx: Context, number: int, follow_up: str | None, action_required: str | None, as_: str
) -> None:
    """Set the follow-up and action-required dates of ticket NUMBER.

    WHEN is 30m, 4h, 2d or 1w from now, a date (2026-01-31, midnight UTC), a date and
    time (2026-01-31T14:00, UTC unless an offset follows), or none to clear it. When a
    date is reached the assignee gets one reminder. A closed ticket refuses."""
    from mailgate.tickets import changes

    now = utc_now()
    given = {"follow_up": follow_up, "action_required": action_required}
    dates = {name: sla.parse_when(text, now) for name, text in given.items() if text is not None}
    if not dates:
        raise click.UsageError("give --follow-up WHEN and/or --action-required WHEN")
    with ctx.store.transaction() as session:
        ticket = changes.set_dates(
            session,
            settings=ctx.settings,
            number=number,
            actor=_actor(session, as_),
            dates=dates,
            at=now,
        )
        shown = {
            "follow-up": ticket.follow_up_at,
            "action-required": ticket.action_required_at,
        }
    click.echo(
        f"ticket #{number}: "
        + ", ".join(f"{k} {v.isoformat() if v else 'none'}" for k, v in shown.items())
    )


for _command in (*LIST_COMMANDS, *FIELD_COMMANDS, *INVOLVEMENT_COMMANDS, *MESSAGE_COMMANDS, merge):
    tickets.add_command(_command)
