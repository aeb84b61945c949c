"""What an inbound message writes to a ticket: a new ticket with its participants,
or a customer reply's effect on an existing one, and the message with its attachments.
Called by ``processing`` inside its one transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate import tickets as status_machine
from mailgate.directory import is_support_address, match_customer
from mailgate.message import ParsedMessage
from mailgate.models import (
    InboundMessage,
    MessageIdEntry,
    Participant,
    StoredAttachment,
    Team,
    Ticket,
    TicketLink,
    TicketMessage,
)
from mailgate.routing import route_new_ticket
from mailgate.screening import Screening
from mailgate.settings import Settings
from mailgate.threading.resolver import Resolution, TicketRef
from mailgate.ticket_records import customer_views, history


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


def open_ticket(
    session: Session,
    parsed: ParsedMessage,
    sender: str,
    resolution: Resolution,
    *,
    settings: Settings,
    at: datetime,
    row: InboundMessage,
) -> Ticket:
    customer = match_customer(sender, customer_views(session))
    team_id = session.scalar(select(Team.id).where(Team.name == settings.defaults.team))
    ticket = Ticket(
        customer_id=customer.id if customer else None,
        requester=sender,
        requester_name=parsed.sender.name if parsed.sender else "",
        subject=parsed.subject,
        type=settings.defaults.type,
        priority=settings.defaults.priority,
        status=status_machine.new_ticket_status(settings.tickets),
        team_id=team_id,
        language=(customer.language if customer and customer.language else "")
        or parsed.language
        or settings.defaults.language,
        tags=[],
        created_at=at,
        updated_at=at,
    )
    session.add(ticket)
    session.flush()
    ticket.number = ticket.id
    people = {sender: "requester"}
    for addr in parsed.cc + parsed.to:
        email = addr.email.lower()
        if not is_support_address(email, settings.smtp.addresses):
            people.setdefault(email, "cc")
    for email, role in people.items():
        session.add(Participant(ticket_id=ticket.id, email=email, role=role))
    history(session, ticket, at, sender, "created", detail={"thread": resolution.reason})
    if resolution.linked_number is not None:
        other = session.scalar(select(Ticket.id).where(Ticket.number == resolution.linked_number))
        if other is not None:
            session.add(TicketLink(ticket_id=ticket.id, other_ticket_id=other, kind="referenced"))
            history(
                session,
                ticket,
                at,
                "system",
                "linked",
                new=str(resolution.linked_number),
                detail={"reason": resolution.reason},
            )
    if row.accepted_by:
        history(session, ticket, at, row.accepted_by, "accepted", detail={"policy": "override"})
    # Type, priority, team, tags by rule; then the assignee (DESIGN.md §5).
    route_new_ticket(
        session, ticket, inbound=row, parsed=parsed, customer=customer, settings=settings, at=at
    )
    return ticket


def customer_reply(
    session: Session,
    ticket: Ticket,
    sender: str,
    *,
    settings: Settings,
    at: datetime,
    screening: Screening | None = None,
) -> str:
    if status_machine.is_closed(ticket.status, settings.tickets):
        # Invariant 4: kept for the agents, the ticket itself untouched.
        history(session, ticket, at, sender, "received_after_close")
        return "closed_ticket"
    if screening is not None and screening.automatic:
        # An auto-reply or bounce belongs in the ticket's record, but it is not the
        # customer speaking: no status change, and the robot does not join the ticket.
        history(
            session, ticket, at, sender, "automatic_received", detail={"reason": screening.reason}
        )
        return "automatic"
    change = status_machine.after_customer_reply(ticket.status, settings.tickets)
    if change is not None:
        ticket.status = change.new
        history(
            session, ticket, at, sender, "status", field="status", old=change.old, new=change.new
        )
    ticket.updated_at = at
    existing = {p.email for p in ticket.participants} | {ticket.requester}
    if sender and sender not in existing:
        session.add(Participant(ticket_id=ticket.id, email=sender, role="cc"))
    history(session, ticket, at, sender, "customer_reply")
    return "reply"


def add_inbound_message(
    *,
    session: Session,
    ticket: Ticket,
    row: InboundMessage,
    parsed: ParsedMessage,
    sender: str,
    resolution: Resolution,
    at: datetime,
) -> TicketMessage:
    message = TicketMessage(
        ticket_id=ticket.id,
        inbound_id=row.id,
        direction="inbound",
        author_email=sender,
        author_name=parsed.sender.name if parsed.sender else "",
        to=[str(a) for a in parsed.to],
        cc=[str(a) for a in parsed.cc],
        subject=parsed.subject,
        body_text=parsed.text,
        body_html=parsed.html,
        message_id=parsed.message_id,
        content_sha256=parsed.content_sha256,
        in_reply_to=list(parsed.in_reply_to),
        references=list(parsed.references),
        thread_method=resolution.method,
        screening={},
        created_at=at,
    )
    session.add(message)
    session.flush()
    for attachment in parsed.attachments:
        session.add(
            StoredAttachment(
                ticket_message_id=message.id,
                filename=attachment.filename,
                content_type=attachment.content_type[:255],
                size=attachment.size,
                sha256=attachment.sha256,
                content_id=attachment.content_id[:255],
                inline=attachment.inline,
                content=attachment.content,
                omitted=attachment.omitted,
            )
        )
    return message
