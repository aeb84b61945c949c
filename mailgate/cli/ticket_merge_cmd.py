"""``mailgate tickets merge NUMBER INTO``: move one ticket's conversation into another
(issue 20), through ``tickets.merge``, the function the portal and the API call too."""

from __future__ import annotations

import click

from mailgate.cli.acting import actor_for, as_option
from mailgate.cli.context import Context, utc_now
from mailgate.cli.output import emit_json

pass_context = click.make_pass_decorator(Context)


@click.command()
@click.argument("number", type=int)
@click.argument("into", type=int)
@as_option
@click.option("--json", "as_json", is_flag=True, help="Print ticket INTO as a JSON object.")
@pass_context
def merge(ctx: Context, number: int, into: int, as_: str, as_json: bool) -> None:
    """Merge ticket NUMBER into ticket INTO: its messages, attachments, participants and
    known Message-IDs move to INTO, and NUMBER is closed with a "merged into" link; mail
    answering NUMBER later lands on INTO. Both requesters get the status notice. Both
    tickets must be open and of the same customer account."""
    from mailgate.db import queries
    from mailgate.tickets.merge import merge as merge_tickets

    with ctx.store.transaction() as session:
        merged = merge_tickets(
            session,
            settings=ctx.settings,
            number=number,
            into=into,
            actor=actor_for(session, as_),
            at=utc_now(),
        )
        moved = (merged.messages, merged.participants, merged.source.status)
        shown = queries.show_ticket(session, into) if as_json else None
    if shown is not None:
        emit_json(shown)
    else:
        messages, people, status = moved
        click.echo(
            f"ticket #{number} merged into #{into} (messages moved: {messages}, participants "
            f"added: {people}); #{number} is {status}"
        )
