"""``mailgate todos add|list|done``: tasks on a ticket or standalone (issue 22).

Each calls the write side's function (``tickets.todos``), the same as the portal and
the API: a ticket's to-do locks the ticket, a closed ticket refuses a new one, and
every change to a ticket's to-do is a history event on it.
"""

from __future__ import annotations

import click

from mailgate.cli.acting import actor_for, as_option
from mailgate.cli.context import Context, utc_now
from mailgate.cli.output import emit_json, emit_table
from mailgate.core import sla
from mailgate.core.errors import InvalidValue

pass_context = click.make_pass_decorator(Context)


@click.group()
def todos() -> None:
    """To-dos: tasks on a ticket or standalone; add, list, done."""


@todos.command("add")
@click.option("--ticket", "number", type=click.IntRange(min=1), metavar="N", help="Ticket #N.")
@click.option("--title", required=True, metavar="T", help="What is to be done (one line).")
@click.option("--assignee", metavar="A", help="The active agent who is to do it.")
@click.option(
    "--due",
    metavar="WHEN",
    help="30m, 4h, 2d or 1w from now, 2026-01-31 (midnight UTC) or 2026-01-31T14:00.",
)
@click.option("--json", "as_json", is_flag=True, help="The new to-do as JSON.")
@as_option
@pass_context
def add(
    ctx: Context,
    number: int | None,
    title: str,
    assignee: str | None,
    due: str | None,
    as_json: bool,
    as_: str,
) -> None:
    """Add a to-do, on ticket N or standalone. Once it is overdue and still open, its
    assignee gets one content-free reminder from the SLA check."""
    from mailgate.db.todos import show_todo
    from mailgate.tickets.todos import add_todo

    now = utc_now()
    due_at = sla.parse_when(due, now) if due is not None else None
    with ctx.store.transaction() as session:
        todo = add_todo(
            session,
            settings=ctx.settings,
            actor=actor_for(session, as_),
            title=title,
            at=now,
            number=number,
            assignee=assignee,
            due_at=due_at,
        )
        row = show_todo(session, todo.id, now=now)
    if as_json:
        emit_json(row)
        return
    where = f"on ticket #{number}" if number is not None else "standalone"
    who = f", for {row['assignee']}" if row["assignee"] else ""
    when = f", due {row['due_at']}" if row["due_at"] else ""
    click.echo(f"to-do {row['id']} added {where}{who}{when}")


@todos.command("list")
@click.option("--mine", is_flag=True, help="Only the --as agent's to-dos.")
@click.option("--overdue", is_flag=True, help="Only open to-dos past their due date.")
@click.option("--ticket", "number", type=click.IntRange(min=1), metavar="N", help="Ticket #N's.")
@click.option("--all", "include_done", is_flag=True, help="Done ones too.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array, for scripts.")
@as_option
@pass_context
def list_(
    ctx: Context,
    mine: bool,
    overdue: bool,
    number: int | None,
    include_done: bool,
    as_json: bool,
    as_: str,
) -> None:
    """Open to-dos, by due date (overdue first); with --all, done ones after them."""
    from mailgate.db.todos import list_todos

    now = utc_now()
    with ctx.store.transaction() as session:
        agent_id = None
        if mine:
            agent_id = actor_for(session, as_).agent_id
            if agent_id is None:
                raise InvalidValue(
                    "--mine lists an agent's to-dos: %(actor)r is no agent (--as)", actor=as_
                )
        rows = list_todos(
            session,
            now=now,
            assignee_id=agent_id,
            ticket_number=number,
            overdue=overdue,
            include_done=include_done,
        )
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        row["state"] = "done" if row["done_at"] else "OVERDUE" if row["overdue"] else "open"
        row["ticket"] = f"#{row['ticket']}" if row["ticket"] else None
    columns = (
        ("id", "ID"),
        ("state", "STATE"),
        ("due_at", "DUE"),
        ("ticket", "TICKET"),
        ("assignee", "ASSIGNEE"),
        ("title", "TITLE"),
    )
    emit_table(rows, columns, empty="no to-dos")


@todos.command("done")
@click.argument("todo_id", metavar="ID", type=click.IntRange(min=1))
@as_option
@pass_context
def done(ctx: Context, todo_id: int, as_: str) -> None:
    """Mark to-do ID done (again: nothing changes)."""
    from mailgate.db.todos import show_todo
    from mailgate.tickets.todos import mark_done

    now = utc_now()
    with ctx.store.transaction() as session:
        changed = mark_done(session, todo_id=todo_id, actor=actor_for(session, as_), at=now)
        row = show_todo(session, todo_id, now=now)
    if changed:
        click.echo(f"to-do {todo_id} done")
    else:
        click.echo(f"to-do {todo_id} was already done ({row['done_at']}, {row['done_by']})")
