"""``tickets helpers`` and ``tickets departments``: who else works on a ticket."""

from __future__ import annotations

import click

from mailgate.cli.acting import PLUS_MINUS_SETTINGS, actor_for, as_option, plus_minus
from mailgate.cli.context import Context, utc_now

pass_context = click.make_pass_decorator(Context)


@click.command(context_settings=PLUS_MINUS_SETTINGS)
@click.argument("number", type=int)
@click.argument("changes_", metavar="[+AGENT|-AGENT]...", nargs=-1, type=click.UNPROCESSED)
@as_option
@pass_context
def helpers(ctx: Context, number: int, changes_: tuple[str, ...], as_: str) -> None:
    """Add (+AGENT) and remove (-AGENT) helpers of ticket NUMBER: agents working on it
    besides its owner, the assignee. They are told of customer replies
    (tickets.notify_helpers) and find it under "My tickets". With no change, print them."""
    from mailgate.db import queries
    from mailgate.tickets import involvement

    add, remove, as_ = plus_minus(changes_, as_)
    with ctx.store.transaction() as session:
        ticket = involvement.set_helpers(
            session,
            settings=ctx.settings,
            number=number,
            actor=actor_for(session, as_),
            add=add,
            remove=remove,
            at=utc_now(),
        )
        names = queries.helpers_and_departments(session, ticket.id)[0]
    click.echo(f"ticket #{number} helpers: {', '.join(names) if names else '(none)'}")


@click.command(context_settings=PLUS_MINUS_SETTINGS)
@click.argument("number", type=int)
@click.argument("changes_", metavar="[+TEAM|-TEAM]...", nargs=-1, type=click.UNPROCESSED)
@as_option
@pass_context
def departments(ctx: Context, number: int, changes_: tuple[str, ...], as_: str) -> None:
    """Add (+TEAM) and remove (-TEAM) departments involved in ticket NUMBER besides its
    own team; the queue's team filter finds it under each. With no change, print them."""
    from mailgate.db import queries
    from mailgate.tickets import involvement

    add, remove, as_ = plus_minus(changes_, as_)
    with ctx.store.transaction() as session:
        ticket = involvement.set_departments(
            session,
            settings=ctx.settings,
            number=number,
            actor=actor_for(session, as_),
            add=add,
            remove=remove,
            at=utc_now(),
        )
        names = queries.helpers_and_departments(session, ticket.id)[1]
    click.echo(f"ticket #{number} departments: {', '.join(names) if names else '(none)'}")


INVOLVEMENT_COMMANDS = (helpers, departments)
