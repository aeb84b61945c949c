"""To-dos: tasks on a ticket or standalone, with an assignee and a due date (issue 22).

Added and marked done like any other change, from the CLI, the portal and the API alike.
A ticket's to-do is a change to that ticket: its row is locked first, a closed ticket
refuses a new one (closing is final), and the history says who did what. Marking one
done stays possible after the ticket closed, so that nobody's list keeps a task it can
never clear. The title is internal, like a note: no notice ever carries it.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailgate.core.errors import InvalidValue, NotFound
from mailgate.core.settings import Settings
from mailgate.db.models import Agent, Todo
from mailgate.tickets.actors import Actor
from mailgate.tickets.records import history, lock_ticket, refuse_if_closed

MAX_TITLE = 500


def clean_title(title: str) -> str:
    """The title as stored: one line of 1 to ``MAX_TITLE`` characters, without the
    spaces around it (ASCII ones: the API's schema says the same, see ONE_LINE)."""
    value = title.strip(" ")
    if not value:
        raise InvalidValue("a to-do needs a title")
    if len(value) > MAX_TITLE:
        raise InvalidValue("a to-do's title is at most %(max)s characters", max=MAX_TITLE)
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value):
        raise InvalidValue("a to-do's title is one line, without control characters")
    return value


def _storable(when: datetime) -> datetime:
    """``when`` in UTC, as it is stored; refused when UTC has no such time (in year 1
    or 9999 with an offset that crosses the calendar's edge)."""
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise InvalidValue(
            "%(when)s is outside the dates mailgate can store", when=when.isoformat()
        ) from None


def active_agent(session: Session, email: str) -> Agent:
    """The active agent with address ``email``; refused when there is none."""
    agent = session.scalar(select(Agent).where(Agent.email == email.strip().lower()))
    if agent is None or not agent.active:
        raise InvalidValue("no active agent %(agent)r", agent=email)
    return agent


def add_todo(
    session: Session,
    *,
    settings: Settings,
    actor: Actor,
    title: str,
    at: datetime,
    number: int | None = None,
    assignee: str | None = None,
    due_at: datetime | None = None,
) -> Todo:
    """A new open to-do, on ticket ``number`` (locked, not closed) or standalone, for
    ``assignee`` (an active agent's address; ``None``: nobody yet), due at ``due_at``
    (``None``: no date, so never overdue).

    A due date already past is allowed, unlike a ticket's dates (which schedule an
    event): a task noted late is simply overdue, and its assignee is reminded once."""
    clean = clean_title(title)
    if due_at is not None:
        due_at = _storable(due_at)
    ticket = lock_ticket(session, number=number) if number is not None else None
    if ticket is not None:
        refuse_if_closed(ticket, settings)
    agent = active_agent(session, assignee) if assignee else None
    todo = Todo(
        ticket_id=ticket.id if ticket is not None else None,
        title=clean,
        assignee_id=agent.id if agent is not None else None,
        due_at=due_at,
        created_by=actor.label,
        created_at=at,
    )
    session.add(todo)
    session.flush()  # the history names it by its id
    if ticket is not None:
        ticket.updated_at = at
        history(
            session,
            ticket,
            at,
            actor.label,
            "todo_added",
            detail={
                "todo": str(todo.id),
                "title": clean,
                "assignee": agent.email if agent is not None else "",
                "due_at": due_at.isoformat() if due_at is not None else "",
            },
        )
    return todo


def mark_done(session: Session, *, todo_id: int, actor: Actor, at: datetime) -> bool:
    """Mark to-do ``todo_id`` done; True when it was open. Done twice (a second click, a
    second integration) changes nothing and records nothing: the first one stands."""
    found = session.get(Todo, todo_id)
    if found is None:
        raise NotFound(f"no to-do {todo_id}")
    # The ticket first, as every change to it does (and as the reminder does): the two
    # then take their locks in one order and never wait for each other in a circle.
    ticket = (
        lock_ticket(session, ticket_id=found.ticket_id) if found.ticket_id is not None else None
    )
    # One statement decides and writes: of two at once, exactly one finds it open.
    closed_now = session.execute(
        update(Todo)
        .where(Todo.id == todo_id, Todo.done_at.is_(None))
        .values(done_at=at, done_by=actor.label)
        .returning(Todo)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if closed_now is None:
        return False
    if ticket is not None:
        ticket.updated_at = at
        history(
            session,
            ticket,
            at,
            actor.label,
            "todo_done",
            detail={"todo": str(todo_id), "title": closed_now.title},
        )
    return True
