"""Who may see which ticket. Agents see every ticket; a customer sees the tickets they
asked or take part in, and an account's admins see every ticket of their account. A
supplier's contact (an address of a supplier, issue 22) sees the supplier side only
(``core.states.SUPPLIER_DIRECTIONS``) of the tickets its supplier is attached to."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from mailgate.db.models import CustomerKey, Supplier, Ticket, TicketSupplier
from mailgate.db.ticket_scope import TicketScope


def admin_of(session: Session, email: str) -> list[int]:
    """Ids of the customer accounts that list ``email`` among their admins, from the
    accounts' keys (``db/customer_keys.py``), not from every account."""
    listing = select(CustomerKey.customer_id).where(
        CustomerKey.value == email.lower(), CustomerKey.kind == "admin"
    )
    return list(session.scalars(listing.order_by(CustomerKey.customer_id)))


def visible_to_customer(session: Session, email: str) -> ColumnElement[bool]:
    """A WHERE condition on ``Ticket`` selecting what customer ``email`` may see."""
    return customer_scope(session, email).condition()


def customer_scope(session: Session, email: str) -> TicketScope:
    """What customer ``email`` may see, as a search reads it (``db.ticket_scope``)."""
    email = email.lower()
    return TicketScope(address=email, accounts=tuple(admin_of(session, email)))


def customer_ticket(session: Session, email: str, number: int) -> Ticket | None:
    """Ticket ``number`` if customer ``email`` may see it; None both when it does not
    exist and when it is someone else's, so the answer never tells which."""
    return session.scalar(
        select(Ticket).where(Ticket.number == number, visible_to_customer(session, email))
    )


def supplier_of(session: Session, email: str) -> list[int]:
    """Ids of the suppliers that list ``email`` among their addresses."""
    email = email.lower()
    # addresses is a JSON list, compared in Python: a desk deals with tens of suppliers
    # where it has thousands of customer accounts, whose lists db/customer_keys.py keys.
    return [s.id for s in session.scalars(select(Supplier)) if email in (s.addresses or [])]


def supplier_ticket(session: Session, email: str, number: int) -> Ticket | None:
    """Ticket ``number`` if a supplier of ``email`` is attached to it; None otherwise,
    whether or not it exists. Its supplier side is all that contact may read."""
    suppliers = supplier_of(session, email)
    if not suppliers:
        return None
    attached = select(TicketSupplier.ticket_id).where(TicketSupplier.supplier_id.in_(suppliers))
    return session.scalar(select(Ticket).where(Ticket.number == number, Ticket.id.in_(attached)))
