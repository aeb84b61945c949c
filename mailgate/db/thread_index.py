"""The thread resolver's lookups (``threading.resolver.ThreadLookup``) over a session."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.db.models import MessageIdEntry, Ticket
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
        ticket = self.session.scalar(select(Ticket).where(Ticket.number == number))
        if ticket is None:
            return None
        emails = frozenset(p.email for p in ticket.participants) | {ticket.requester}
        return TicketRef(ticket.id, number, emails)

    def number_of(self, ticket_id: int) -> int | None:
        return self.session.scalar(select(Ticket.number).where(Ticket.id == ticket_id))
