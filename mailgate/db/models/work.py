"""Work on tickets besides their messages (issue 22): activities, to-dos, helpers,
departments and suppliers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

# Integer ids that are BIGINT on PostgreSQL and the rowid alias on SQLite.
from mailgate.db.models.base import Base, BigId


class Activity(Base):
    """Time an agent spent on a ticket (issue 22): a call, a meeting, research. Its text
    is internal, like a note: never in a notice, never shown to customers."""

    __tablename__ = "activities"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    actor: Mapped[str] = mapped_column(String(320))
    type: Mapped[str] = mapped_column(String(64))
    minutes: Mapped[int]
    text: Mapped[str] = mapped_column(Text, default="")
    # `mailgate stats` sums the period's activities by range.
    created_at: Mapped[datetime] = mapped_column(index=True)


class Todo(Base):
    """A task (issue 22), on a ticket or standalone: a title, an assignee, a due date.
    Its title is internal, like a note: a reminder points to it, never quotes it."""

    __tablename__ = "todos"
    # Open to-dos (done_at NULL) first, by due date: "open and due before now", which
    # the SLA check and `todos list --overdue` ask, reads a range of this index.
    __table_args__ = (Index("ix_todos_done_at_due_at", "done_at", "due_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    due_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(320))
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    # Set once, in the same UPDATE that claims the reminder, so it is sent once only.
    reminded_at: Mapped[datetime | None]


class TicketHelper(Base):
    """An agent helping on a ticket besides its owner, the assignee (issue 22)."""

    __tablename__ = "ticket_helpers"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    # "My tickets" of an agent reads the tickets they help on through this index.
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True, index=True)


class TicketDepartment(Base):
    """A team involved in a ticket besides the owning one, its team (issue 22)."""

    __tablename__ = "ticket_departments"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    # The queue's team filter finds a ticket under any of its departments through this.
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), primary_key=True, index=True)


class Supplier(Base):
    """A third party agents work with on tickets (issue 22): its mail, from one of its
    ``addresses``, to a ticket it is attached to is a supplier message, never a
    customer's; it is told of agents' messages to it in its ``language``."""

    __tablename__ = "suppliers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    addresses: Mapped[list[Any]] = mapped_column(default=list)
    language: Mapped[str] = mapped_column(String(16), default="")


class TicketSupplier(Base):
    """A supplier attached to a ticket (issue 22)."""

    __tablename__ = "ticket_suppliers"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    # A supplier contact's portal finds the tickets of its supplier through this index.
    supplier_id: Mapped[int] = mapped_column(
        ForeignKey("suppliers.id"), primary_key=True, index=True
    )
