"""``tickets helpers``, ``departments`` and ``suppliers``: who else works on a ticket,
each the write side's ``members.change`` for its kind."""

from __future__ import annotations

import click

from mailgate.cli.acting import PLUS_MINUS_SETTINGS, actor_for, as_option, plus_minus
from mailgate.cli.context import Context, utc_now

pass_context = click.make_pass_decorator(Context)


def _members_command(name: str, metavar: str, help: str) -> click.Command:
    """``tickets NAME NUMBER [+X|-X]...`` for one kind of member (``tickets.members``)."""

    @click.command(name, context_settings=PLUS_MINUS_SETTINGS, help=help)
    @click.argument("number", type=int)
    @click.argument(
        "changes_", metavar=f"[+{metavar}|-{metavar}]...", nargs=-1, type=click.UNPROCESSED
    )
    @as_option
    @pass_context
    def command(ctx: Context, number: int, changes_: tuple[str, ...], as_: str) -> None:
        # Imported here: the write side (and the mail parser behind it) stays out of --help.
        from mailgate.tickets import involvement, members, suppliers

        kind, change = {
            "helpers": (involvement.HELPERS, involvement.set_helpers),
            "departments": (involvement.DEPARTMENTS, involvement.set_departments),
            "suppliers": (suppliers.SUPPLIERS, suppliers.set_suppliers),
        }[name]
        add, remove, as_ = plus_minus(changes_, as_)
        with ctx.store.transaction() as session:
            ticket = change(
                session,
                settings=ctx.settings,
                number=number,
                actor=actor_for(session, as_),
                add=add,
                remove=remove,
                at=utc_now(),
            )
            names = list(members.current(session, kind, ticket.id))
        click.echo(f"ticket #{number} {name}: {', '.join(names) if names else '(none)'}")

    return command


INVOLVEMENT_COMMANDS = (
    _members_command(
        "helpers",
        "AGENT",
        "Add (+AGENT) and remove (-AGENT) helpers of ticket NUMBER: agents working on it "
        "besides its owner, the assignee. They are told of customer replies "
        '(tickets.notify_helpers) and find it under "My tickets". With no change, print them.',
    ),
    _members_command(
        "departments",
        "TEAM",
        "Add (+TEAM) and remove (-TEAM) departments involved in ticket NUMBER besides its "
        "own team; the queue's team filter finds it under each. With no change, print them.",
    ),
    _members_command(
        "suppliers",
        "NAME",
        "Attach (+NAME) and detach (-NAME) suppliers of ticket NUMBER (`mailgate suppliers "
        "add`). Their mail to it is kept for agents, and `tickets reply --to-supplier` "
        "writes to them. With no change, print them.",
    ),
)
