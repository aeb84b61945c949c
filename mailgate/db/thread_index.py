"""The thread resolver's lookups (``threading.resolver.ThreadLookup``) over a session."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from email.utils import getaddresses

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.db.models import Customer, MessageIdEntry, Notice, Ticket, TicketMessage
from mailgate.threading.resolver import TicketRef


class ThreadIndex:
    """``ThreadLookup`` over a session.

    ``known`` holds index entries the caller already read (Message-ID → entry), so the
    ids it covers cost no second query; ``load`` reads a ticket by id, e.g. taking its row
    lock at once, so that a ticket found here is the one the caller then changes."""

    def __init__(
        self,
        session: Session,
        *,
        known: Mapping[str, MessageIdEntry] | None = None,
        load: Callable[[int], Ticket | None] | None = None,
    ) -> None:
        self.session = session
        self.known = dict(known or {})
        self.load = load or (lambda ticket_id: session.get(Ticket, ticket_id))
        self.loaded: dict[int, Ticket] = {}

    def ticket_for_message_ids(self, message_ids: tuple[str, ...]) -> int | None:
        missing = [mid for mid in message_ids if mid not in self.known]
        if missing:
            for entry in self.session.scalars(
                select(MessageIdEntry).where(MessageIdEntry.message_id.in_(missing))
            ):
                self.known[entry.message_id] = entry
        # Most specific first: In-Reply-To, then References from newest to oldest.
        return next((self.known[mid].ticket_id for mid in message_ids if mid in self.known), None)

    def ticket_by_number(self, number: int) -> TicketRef | None:
        return self._ref(self.session.scalar(select(Ticket).where(Ticket.number == number)))

    def ticket_by_id(self, ticket_id: int) -> TicketRef | None:
        ticket = self.load(ticket_id)
        if ticket is not None:
            self.loaded[ticket_id] = ticket
        return self._ref(ticket)

    def _ref(self, ticket: Ticket | None) -> TicketRef | None:
        """The ticket with everyone who may write on it: requester and participants,
        everyone addressed on its messages (To/Cc) and by its notices, and the admins of
        its customer account."""
        if ticket is None or ticket.number is None:
            return None
        people = {ticket.requester, *(p.email for p in ticket.participants)}
        for to, cc in self.session.execute(
            select(TicketMessage.to, TicketMessage.cc).where(TicketMessage.ticket_id == ticket.id)
        ):
            people.update(address for _, address in getaddresses([*(to or []), *(cc or [])]))
        people.update(
            self.session.scalars(select(Notice.recipient).where(Notice.ticket_id == ticket.id))
        )
        if ticket.customer_id is not None:
            customer = self.session.get(Customer, ticket.customer_id)
            people.update(customer.admins if customer is not None else ())
        return TicketRef(ticket.id, ticket.number, frozenset(p.lower() for p in people if p))
