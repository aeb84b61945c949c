"""The SLA check's to-do pass: an overdue open to-do's assignee gets one reminder.

Once only, however many checks run at once on however many machines: the reminder is
claimed by ``UPDATE todos SET reminded_at = now WHERE reminded_at IS NULL …`` in the
transaction that writes the notice, and only the pass whose update found the row writes
it. On PostgreSQL a second pass's update waits for the first one's row lock and then
finds ``reminded_at`` set; on SQLite the passes take the one write lock in turn. A crash
before the commit leaves the to-do unclaimed, so the next pass reminds.

The notice is content-free (invariant 3): it points to the ticket, or for a standalone
to-do to the agent's "My to-dos" page, and never carries the title.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailgate.core.notices import TODO_DUE, Event
from mailgate.core.settings import Settings
from mailgate.core.states import NoticeState
from mailgate.db.models import Agent, Todo
from mailgate.db.store import Store
from mailgate.tickets.notify import notify
from mailgate.tickets.records import history, lock_ticket

# The SLA check's name in the history (tickets.sla_check.ACTOR), which runs this pass.
ACTOR = "sla"


@dataclass(frozen=True)
class Reminded:
    todo_id: int
    number: int | None  # the ticket's, or None for a standalone to-do
    due_at: datetime
    notice_id: int | None  # None: the assignee is inactive, or the notice was suppressed


def overdue(session: Session, now: datetime) -> list[int]:
    """Open to-dos due by ``now``, with an assignee, not reminded yet: a range of
    ``ix_todos_done_at_due_at`` (open ones, by due date)."""
    return list(
        session.scalars(
            select(Todo.id)
            .where(
                Todo.done_at.is_(None),
                Todo.due_at <= now,
                Todo.reminded_at.is_(None),
                Todo.assignee_id.is_not(None),
            )
            .order_by(Todo.id)
        )
    )


def remind(session: Session, todo_id: int, settings: Settings, now: datetime) -> Reminded | None:
    """Claim and send the reminder of to-do ``todo_id``; None when it is not due, done,
    or already reminded (by this pass or another)."""
    found = session.get(Todo, todo_id)
    if found is None:
        return None
    # The ticket's lock first, in the order marking it done takes them.
    ticket = (
        lock_ticket(session, ticket_id=found.ticket_id) if found.ticket_id is not None else None
    )
    todo = session.execute(
        update(Todo)
        .where(
            Todo.id == todo_id,
            Todo.reminded_at.is_(None),
            Todo.done_at.is_(None),
            Todo.due_at <= now,
        )
        .values(reminded_at=now)
        .returning(Todo)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if todo is None or todo.due_at is None:
        return None
    due = todo.due_at.isoformat()
    agent = session.get(Agent, todo.assignee_id) if todo.assignee_id is not None else None
    if ticket is not None:
        history(
            session, ticket, now, ACTOR, "todo_due", detail={"todo": str(todo.id), "due_at": due}
        )
    event = Event(
        kind=TODO_DUE,
        cause=f"todo:{todo.id}",
        ticket_number=(ticket.number or 0) if ticket is not None else 0,
        requester="",
        assignee=agent.email if agent is not None and agent.active else "",
        due_at=due,
    )
    written = notify(session, event, ticket=ticket, settings=settings, now=now)
    sent = [n.id for n in written if n.state == NoticeState.PENDING]
    return Reminded(
        todo.id, ticket.number if ticket else None, todo.due_at, sent[0] if sent else None
    )


def remind_overdue(store: Store, settings: Settings, now: datetime) -> list[Reminded]:
    """Every overdue to-do's reminder not sent yet; one transaction each, so a slow or
    failing one holds up no other."""
    with store.transaction() as session:
        due = overdue(session, now)
    reminded: list[Reminded] = []
    for todo_id in due:
        with store.transaction() as session:
            done = remind(session, todo_id, settings, now)
        if done is not None:
            reminded.append(done)
    return reminded
