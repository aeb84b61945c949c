"""Rows every ticket change writes, and the lock every change takes first.

Each write-side function locks its ticket (``lock_ticket``) before it reads anything it
decides on, records a history event for every change (``history``), and stores typed
messages the same way for every channel (``typed_message``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Column, Table, insert, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from mailgate.core import statuses as status_machine
from mailgate.core.attachments import Attachment
from mailgate.core.errors import ActionRefused, NotFound
from mailgate.core.i18n import N_
from mailgate.core.settings import Settings
from mailgate.db.models import Base, HistoryEvent, Ticket, TicketMessage
from mailgate.tickets.files import attach

# Shown alone on a closed ticket's page; ``closed_refusal`` repeats it whole (one msgid).
CLOSED_EXPLANATION = N_(
    "This ticket is closed and cannot change any more. Please open a new ticket; "
    "it can refer to this one."
)


def lock_ticket(
    session: Session, *, number: int | None = None, ticket_id: int | None = None
) -> Ticket:
    """The ticket by public ``number`` (or ``ticket_id``), locked until the transaction ends
    and read after the lock is held, so a decision sees every earlier commit.

    PostgreSQL: ``SELECT … FOR UPDATE`` makes a second writer wait. SQLite ignores FOR
    UPDATE, and pysqlite begins a transaction only at its first write, so a plain read
    could be stale by the time this transaction writes: a no-op update of the row first
    takes the database's write lock.
    """
    where = Ticket.number == number if number is not None else Ticket.id == ticket_id
    if session.get_bind().dialect.name == "sqlite":
        # One statement: the no-op update takes the write lock and returns the row.
        ticket = session.execute(
            update(Ticket)
            .where(where)
            .values(updated_at=Ticket.updated_at)
            .returning(Ticket)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
    else:
        ticket = session.execute(
            select(Ticket).where(where).with_for_update().execution_options(populate_existing=True)
        ).scalar_one_or_none()
    if ticket is None:
        raise NotFound(
            f"no ticket #{number}" if number is not None else f"no ticket id {ticket_id}"
        )
    return ticket


def history(
    session: Session,
    ticket: Ticket,
    at: datetime,
    actor: str,
    action: str,
    *,
    field: str = "",
    old: str = "",
    new: str = "",
    detail: dict[str, str] | None = None,
    flush: bool = False,
) -> HistoryEvent:
    """Record one change to ``ticket`` (who, what, when): every change is a history event.

    ``flush`` when the caller needs the event's id now (a notice named after it); else the
    row goes in with the transaction's next flush, in one statement with the others."""
    event = HistoryEvent(
        ticket_id=ticket.id,
        at=at,
        actor=actor or "unknown",
        action=action,
        field=field,
        old=old,
        new=new,
        detail=detail or {},
    )
    session.add(event)
    if flush:
        session.flush()
    return event


def insert_pending(session: Session, model: type[Base]) -> None:
    """Insert the session's pending rows of ``model`` in one statement, in the order they
    were added; they leave the session, without their ids (for rows nobody reads back).

    The ORM inserts several new rows of a table one statement each on SQLite: it must
    read each id back, and SQLite does not promise the order of a multi-row RETURNING.
    On PostgreSQL that is one multi-row ``INSERT … VALUES (…), (…)`` (an executemany
    would be one statement per row there); on SQLite one executemany, which steps one
    prepared statement per row inside SQLite."""
    rows = [row for row in session.new if isinstance(row, model)]
    if not rows:
        return
    mapper = inspect(model)
    table = cast(Table, mapper.local_table)
    columns = [
        (mapper.get_property_by_column(column).key, column)
        for column in table.columns
        if not column.primary_key
    ]
    values = [{column.name: _value(row, key, column) for key, column in columns} for row in rows]
    for row in rows:
        session.expunge(row)
    # The table, not the ORM's bulk INSERT: that leaves out None values (one statement
    # per set of columns) and reads ids back on PostgreSQL; nobody needs them here.
    if len(values) == 1 or session.get_bind().dialect.name == "sqlite":
        # One cached statement, executed once per row by the driver in one call: SQLite
        # steps its prepared statement again for each row, and SQLAlchemy compiles the
        # statement once, not once per number of rows with every value in its cache key.
        session.execute(insert(table), values)
    else:
        session.execute(insert(table).values(values))


def _value(row: Base, key: str, column: Column[Any]) -> Any:
    """The value ``row`` was given for ``key``; one never given gets the column's
    default, as a flush would give it (a callable default is called without the
    statement's context, which the models' defaults, ``dict`` and ``list``, ignore)."""
    if key in inspect(row).dict:
        return getattr(row, key)
    default = column.default
    if isinstance(default, CallableColumnDefault):
        return cast(Any, default.arg)(None)
    return default.arg if isinstance(default, ScalarElementColumnDefault) else None


def typed_message(
    session: Session,
    ticket: Ticket,
    *,
    direction: str,
    author_email: str,
    author_name: str,
    text: str,
    at: datetime,
    via: str,
    to: list[str] | None = None,
    subject: str | None = None,
    attachments: tuple[Attachment, ...] = (),
) -> TicketMessage:
    """A ticket message typed by a person (agent reply, internal note, a customer's
    portal reply) rather than received by mail: plain text, no headers to keep, and the
    files attached to it (checked already: ``files.typed_files``)."""
    message = TicketMessage(
        ticket_id=ticket.id,
        direction=direction,
        author_email=author_email,
        author_name=author_name.strip()[:255],
        to=to or [],
        cc=[],
        subject=ticket.subject if subject is None else subject,
        body_text=text,
        body_html="",
        thread_method=via,
        screening={},
        created_at=at,
    )
    session.add(message)
    session.flush()  # history and notices name the message by its id
    attach(session, message.id, attachments)
    return message


def refuse_if_closed(ticket: Ticket, settings: Settings) -> None:
    """Closing is final (invariant 4): refuse any change a closed ticket would show."""
    if status_machine.is_closed(ticket.status, settings.tickets):
        raise closed_refusal(ticket)


def closed_refusal(ticket: Ticket) -> ActionRefused:
    """The refusal of a change to closed ``ticket``: its status, then ``CLOSED_EXPLANATION``
    (spelt out, so that the whole message is one msgid for the translators)."""
    return ActionRefused(
        "ticket #%(number)s is %(status)s. This ticket is closed and cannot change any more. "
        "Please open a new ticket; it can refer to this one.",
        number=ticket.number,
        status=ticket.status,
    )
