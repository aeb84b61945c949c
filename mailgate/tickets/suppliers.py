"""Suppliers on a ticket (issue 22): which are attached, and their side of it.

A supplier is a third party an agent works with on a ticket. Attaching one is one
function (``set_suppliers``) from the CLI, the agent portal and the API (``PATCH``),
with the row lock and a history event. Its mail to the ticket is a supplier message
(``supplier_sender``, ``add_supplier_message``), agents' messages to it go through
``reply_to_supplier``; both are the supplier side, which customers never see
(``core.states.SUPPLIER_DIRECTIONS``) and which moves neither the status nor the first response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core import notices
from mailgate.core import statuses as status_machine
from mailgate.core.attachments import Attachment
from mailgate.core.errors import ActionRefused, InvalidValue
from mailgate.core.screening import Screening
from mailgate.core.settings import Settings
from mailgate.core.states import FROM_SUPPLIER, TO_SUPPLIER, Outcome
from mailgate.db.models import Supplier, Ticket, TicketMessage, TicketSupplier
from mailgate.tickets import members
from mailgate.tickets.actors import Actor
from mailgate.tickets.files import typed_files
from mailgate.tickets.messages import Added, Incoming, clean_body, store_message
from mailgate.tickets.notify import about_message, notify, ticket_event
from mailgate.tickets.records import history, lock_ticket, refuse_if_closed, typed_message


def _check_suppliers(
    ticket: Ticket, names: Sequence[str], rows: Mapping[str, Any], before: Mapping[str, int]
) -> None:
    for name in names:
        if name not in rows:
            raise InvalidValue("no supplier %(supplier)r (mailgate suppliers add)", supplier=name)


SUPPLIERS = members.MemberKind(
    action="suppliers",
    model=Supplier,
    name="name",
    link=TicketSupplier,
    link_column="supplier_id",
    not_there=lambda name, number: InvalidValue(
        "supplier %(supplier)r is not attached to ticket #%(number)s", supplier=name, number=number
    ),
    check=_check_suppliers,
    count="suppliers_count",
)


def set_suppliers(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    at: datetime,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    exactly: Sequence[str] | None = None,
) -> Ticket:
    """Attach and detach suppliers by name (``exactly``: replace them all)."""
    return members.set_members(
        session, SUPPLIERS, settings=settings, number=number, actor=actor, at=at,
        add=add, remove=remove, exactly=exactly,
    )  # fmt: skip


def supplier_sender(session: Session, ticket: Ticket, sender: str) -> Supplier | None:
    """The supplier attached to ``ticket`` (locked) that ``sender`` writes for, if any.
    No statement for a ticket without suppliers (``suppliers_count``), most of them:
    a customer's reply costs nothing more."""
    if not ticket.suppliers_count or not sender:
        return None
    attached = session.scalars(
        select(Supplier)
        .join(TicketSupplier, TicketSupplier.supplier_id == Supplier.id)
        .where(TicketSupplier.ticket_id == ticket.id)
        .order_by(Supplier.name)
    )
    # addresses is a JSON list: compared in Python, the same on SQLite and PostgreSQL.
    return next((s for s in attached if sender.lower() in (s.addresses or [])), None)


def add_supplier_message(
    session: Session,
    ticket: Ticket,
    incoming: Incoming,
    supplier: Supplier,
    *,
    settings: Settings,
    at: datetime,
    cause: str,
    screening: Screening | None = None,
) -> Added:
    """Mail from ``supplier`` on ``ticket`` (locked by the caller), kept as a supplier
    message: agents see it, the customer never does. It is not the customer speaking,
    so the status stays (a waiting ticket keeps waiting) and the sender does not join
    the ticket's participants; the owner and helpers get ``supplier_replied``. On a
    closed ticket it is kept after close and the sender learns the ticket is closed
    (invariant 4), as a customer would."""
    sender = incoming.author_email
    closed = status_machine.is_closed(ticket.status, settings.tickets)
    if closed:
        history(session, ticket, at, sender, "received_after_close")
        outcome, kind = Outcome.CLOSED_TICKET, notices.MESSAGE_TO_CLOSED
    else:
        ticket.updated_at = at
        outcome, kind = Outcome.SUPPLIER, notices.SUPPLIER_REPLY
    message = store_message(
        session, ticket, incoming, at=at, after_close=closed, direction=FROM_SUPPLIER
    )
    if not closed:
        detail = {"supplier": supplier.name, "message": str(message.id), "via": incoming.via}
        history(session, ticket, at, sender, "supplier_message", detail=detail)
    written = about_message(
        session,
        ticket,
        kind,
        cause,
        author=sender,
        message_id=incoming.message_id,
        inbound_id=incoming.inbound_id,
        settings=settings,
        now=at,
        screening=screening,
    )
    return Added(outcome, message, tuple(written))


def reply_to_supplier(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    supplier: str,
    body: str,
    at: datetime,
    via: str = "portal",
    attachments: Sequence[Attachment] = (),
) -> TicketMessage:
    """An agent's message to ``supplier``, attached to ticket ``number``, with its files
    (``attachments``): the supplier side, which the customer never sees. It is not an
    answer to the customer: neither the first response nor the status moves. Each of
    the supplier's addresses gets a content-free ``supplier_message`` notice, in the
    supplier's language, pointing to the portal, where a contact signs in with an
    emailed link and reads the supplier side of the tickets its supplier is attached to."""
    text = clean_body(body)
    files = typed_files(settings, attachments)
    ticket = lock_ticket(session, number=number)
    refuse_if_closed(ticket, settings)
    name = supplier.strip()
    found = session.scalar(
        select(Supplier)
        .join(TicketSupplier, TicketSupplier.supplier_id == Supplier.id)
        .where(TicketSupplier.ticket_id == ticket.id, Supplier.name == name)
    )
    if found is None:
        # Refused (not invalid): the name may be right, the ticket is not its.
        raise ActionRefused(
            "supplier %(supplier)r is not attached to ticket #%(number)s",
            supplier=name,
            number=number,
        )
    addresses = [str(a) for a in found.addresses or []]
    message = typed_message(
        session,
        ticket,
        direction=TO_SUPPLIER,
        author_email=actor.email or settings.outbound.from_address,
        author_name=actor.name,
        text=text,
        at=at,
        via=via,
        to=addresses,
        attachments=files,
    )
    ticket.updated_at = at
    detail = {"supplier": found.name, "message": str(message.id)}
    history(session, ticket, at, actor.label, "message_to_supplier", detail=detail)
    event = ticket_event(
        session,
        ticket,
        notices.MESSAGE_TO_SUPPLIER,
        f"to_supplier:{message.id}",
        supplier_addresses=tuple(addresses),
        status=ticket.status,
    )
    notify(
        session,
        event,
        ticket=ticket,
        settings=settings,
        now=at,
        supplier_language=found.language,
    )
    return message
