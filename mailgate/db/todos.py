"""To-dos as the CLI, the portal and the API list them: plain dicts, stable field names.

Fields (README "JSON output": added to, never renamed): ``id, ticket, title, assignee,
due_at, overdue, done_at, done_by, created_by, created_at, reminded_at``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, aliased

from mailgate.core.errors import NotFound
from mailgate.db.models import Agent, Ticket, Todo


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def list_todos(
    session: Session,
    *,
    now: datetime,
    assignee_id: int | None = None,
    ticket_number: int | None = None,
    overdue: bool = False,
    include_done: bool = False,
    limit: int = 0,
) -> list[dict[str, Any]]:
    """To-dos, open ones first by due date (those without one last), then done ones,
    also by due date; only open ones unless ``include_done``. ``overdue``: open and due by ``now``.
    ``limit`` 0: all of them."""
    assignee = aliased(Agent)
    where: list[ColumnElement[bool]] = []
    if assignee_id is not None:
        where.append(Todo.assignee_id == assignee_id)
    if ticket_number is not None:
        where.append(Ticket.number == ticket_number)
    if overdue:
        where += [Todo.done_at.is_(None), Todo.due_at <= now]
    elif not include_done:
        where.append(Todo.done_at.is_(None))
    query = (
        select(Todo, Ticket.number, assignee.email)
        .outerjoin(Ticket, Ticket.id == Todo.ticket_id)
        .outerjoin(assignee, assignee.id == Todo.assignee_id)
        .where(*where)
        .order_by(
            Todo.done_at.is_not(None),
            Todo.due_at.is_(None),
            Todo.due_at,
            Todo.id,
        )
    )
    if limit:
        query = query.limit(limit)
    return [todo_row(todo, number, email, now) for todo, number, email in session.execute(query)]


def show_todo(session: Session, todo_id: int, *, now: datetime) -> dict[str, Any]:
    """One to-do as ``list_todos`` shows it; ``NotFound`` when there is none."""
    todo = session.get(Todo, todo_id)
    if todo is None:
        raise NotFound(f"no to-do {todo_id}")
    number = session.scalar(select(Ticket.number).where(Ticket.id == todo.ticket_id))
    email = session.scalar(select(Agent.email).where(Agent.id == todo.assignee_id))
    return todo_row(todo, number, email, now)


def todo_row(todo: Todo, number: int | None, assignee: str | None, now: datetime) -> dict[str, Any]:
    return {
        "id": todo.id,
        "ticket": number,
        "title": todo.title,
        "assignee": assignee,
        "due_at": _iso(todo.due_at),
        "overdue": todo.done_at is None and todo.due_at is not None and todo.due_at <= now,
        "done_at": _iso(todo.done_at),
        "done_by": todo.done_by,
        "created_by": todo.created_by,
        "created_at": _iso(todo.created_at),
        "reminded_at": _iso(todo.reminded_at),
    }


def ticket_number_of(session: Session, todo_id: int) -> int | None:
    """The number of the ticket to-do ``todo_id`` is on; None for a standalone one."""
    return session.scalar(
        select(Ticket.number).join(Todo, Todo.ticket_id == Ticket.id).where(Todo.id == todo_id)
    )


def active_agents(session: Session) -> list[str]:
    """The addresses a to-do may be given to."""
    return list(session.scalars(select(Agent.email).where(Agent.active).order_by(Agent.email)))


def agent_id(session: Session, email: str) -> int | None:
    """The id of the agent with address ``email``, active or not."""
    return session.scalar(select(Agent.id).where(Agent.email == email.strip().lower()))
