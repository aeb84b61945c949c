"""``mailgate tickets priority|type|team|tag``: change one field of a ticket (issue 20);
``tickets activity``: log time spent on it (issue 22).

Each calls the write side's function for that change (``tickets.changes``,
``tickets.activities``), the same as the portal and the API: the ticket is locked, a
closed ticket refuses, and the change is a history event.
"""

from __future__ import annotations

from typing import TextIO

import click

from mailgate.cli.acting import PLUS_MINUS_SETTINGS, actor_for, as_option, plus_minus
from mailgate.cli.context import Context, utc_now

pass_context = click.make_pass_decorator(Context)


def _choice_command(field: str, example: str) -> click.Command:
    """``tickets priority`` or ``tickets type``: the same command for either choice."""
    metavar = field.upper()

    @click.command(
        field, help=f"Give ticket NUMBER another {metavar} (a configured one, e.g. {example})."
    )
    @click.argument("number", type=int)
    @click.argument("value", metavar=metavar)
    @as_option
    @pass_context
    def command(ctx: Context, number: int, value: str, as_: str) -> None:
        from mailgate.tickets import fields

        setter = fields.set_priority if field == "priority" else fields.set_type
        with ctx.store.transaction() as session:
            ticket = setter(
                session,
                settings=ctx.settings,
                number=number,
                actor=actor_for(session, as_),
                at=utc_now(),
                **{"priority" if field == "priority" else "type_": value},
            )
            shown = getattr(ticket, field)
        click.echo(f"ticket #{number}: {field} {shown}")

    return command


priority = _choice_command("priority", "High")
type_ = _choice_command("type", "Technical")


@click.command()
@click.argument("number", type=int)
@click.argument("team")
@as_option
@pass_context
def team(ctx: Context, number: int, team: str, as_: str) -> None:
    """Move ticket NUMBER to TEAM ("none": no team)."""
    from mailgate.tickets import changes

    with ctx.store.transaction() as session:
        changes.set_team(
            session,
            settings=ctx.settings,
            number=number,
            actor=actor_for(session, as_),
            team=None if team.lower() == "none" else team,
            at=utc_now(),
        )
    click.echo(f"ticket #{number} is with team {team}")


@click.command(context_settings=PLUS_MINUS_SETTINGS)
@click.argument("number", type=int)
@click.argument("changes_", metavar="[+TAG|-TAG]...", nargs=-1, type=click.UNPROCESSED)
@as_option
@pass_context
def tag(ctx: Context, number: int, changes_: tuple[str, ...], as_: str) -> None:
    """Add (+TAG, or just TAG) and remove (-TAG) tags of ticket NUMBER; with no
    change, print its tags. A tag is one word; tags are kept in lower case."""
    from mailgate.tickets import fields

    add, remove, as_ = plus_minus(changes_, as_)
    with ctx.store.transaction() as session:
        ticket = fields.set_tags(
            session,
            settings=ctx.settings,
            number=number,
            actor=actor_for(session, as_),
            add=add,
            remove=remove,
            at=utc_now(),
        )
        tags = list(ticket.tags)
    click.echo(f"ticket #{number} tags: {', '.join(tags) if tags else '(none)'}")


@click.command()
@click.argument("number", type=int)
@click.option("--type", "type_", required=True, metavar="T", help="One of tickets.activity_types.")
@click.option(
    "--minutes", required=True, type=click.IntRange(min=1), help="Time spent, in minutes."
)
@click.option(
    "--file", "source", type=click.File("r"), help="An internal text (agents only); - for stdin."
)
@as_option
@pass_context
def activity(
    ctx: Context, number: int, type_: str, minutes: int, source: TextIO | None, as_: str
) -> None:
    """Log MINUTES of work of a type (Call, Meeting, ...) on ticket NUMBER; `mailgate
    stats` sums them by ticket, customer account, agent and type."""
    from mailgate.tickets.activities import log_activity

    text = source.read() if source is not None else ""
    with ctx.store.transaction() as session:
        logged = log_activity(
            session,
            settings=ctx.settings,
            number=number,
            actor=actor_for(session, as_),
            type_=type_,
            minutes=minutes,
            text=text,
            at=utc_now(),
        )
        activity_id = logged.id
    click.echo(f"ticket #{number}: activity {activity_id} logged ({type_}, {minutes} min)")


FIELD_COMMANDS = (priority, type_, team, tag, activity)
