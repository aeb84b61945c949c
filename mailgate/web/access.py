"""Who may see which ticket. Agents see every ticket; a customer sees the tickets they
asked or take part in, and an account's admins see every ticket of their account."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from mailgate.db.models import Customer, Participant, Ticket


def admin_of(session: Session, email: str) -> list[int]:
    """Ids of the customer accounts that list ``email`` among their admins."""
    email = email.lower()
    # admins is a JSON list: compared in Python, the same way on SQLite and PostgreSQL.
    return [c.id for c in session.scalars(select(Customer)) if email in (c.admins or [])]


def visible_to_customer(session: Session, email: str) -> ColumnElement[bool]:
    """A WHERE condition on ``Ticket`` selecting what customer ``email`` may see."""
    email = email.lower()
    own = or_(
        Ticket.requester == email,
        Ticket.id.in_(select(Participant.ticket_id).where(Participant.email == email)),
    )
    accounts = admin_of(session, email)
    return or_(own, Ticket.customer_id.in_(accounts)) if accounts else own


def customer_ticket(session: Session, email: str, number: int) -> Ticket | None:
    """Ticket ``number`` if customer ``email`` may see it; None both when it does not
    exist and when it is someone else's, so the answer never tells which."""
    return session.scalar(
        select(Ticket).where(Ticket.number == number, visible_to_customer(session, email))
    )
