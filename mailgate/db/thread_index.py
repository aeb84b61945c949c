"""The thread resolver's lookups (``threading.resolver.ThreadLookup``) over a session."""

from __future__ import annotations

from email.utils import getaddresses

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.db.models import Customer, MessageIdEntry, Notice, Ticket, TicketMessage
from mailgate.threading.resolver import TicketRef


class ThreadIndex:
    """``ThreadLookup`` over a session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def ticket_for_message_ids(self, message_ids: tuple[str, ...]) -> int | None:
        rows = self.session.execute(
            select(MessageIdEntry.message_id, MessageIdEntry.ticket_id).where(
                MessageIdEntry.message_id.in_(message_ids)
            )
        ).all()
        found = {mid: tid for mid, tid in rows}
        # Most specific first: In-Reply-To, then References from newest to oldest.
        return next((found[mid] for mid in message_ids if mid in found), None)

    def ticket_by_number(self, number: int) -> TicketRef | None:
        return self._ref(self.session.scalar(select(Ticket).where(Ticket.number == number)))

    def ticket_by_id(self, ticket_id: int) -> TicketRef | None:
        return self._ref(self.session.get(Ticket, ticket_id))

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
