"""Rows every ticket change writes, whoever makes it (mail, portal, CLI): history
events, and the customer directory as the pure core sees it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.directory import CustomerView
from mailgate.models import Customer, HistoryEvent, Ticket, TicketMessage


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
) -> HistoryEvent:
    """Record one change to ``ticket`` (who, what, when): every change is a history event."""
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
    session.flush()  # callers name notices after the event's id (their unique cause)
    return event


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
) -> TicketMessage:
    """A ticket message typed by a person (agent reply, internal note, a customer's
    portal reply) rather than received by mail: plain text, no headers to keep."""
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
    return message


def customer_views(session: Session) -> list[CustomerView]:
    """Every customer account as the pure directory sees it."""
    return [
        CustomerView(
            c.id,
            c.name,
            tuple(c.domains),
            tuple(c.addresses),
            tuple(c.admins),
            c.owner_id,
            c.language,
        )
        for c in session.scalars(select(Customer))
    ]
