"""What customers (and integrations on their behalf) do without email: open a ticket, reply.

The same effects as the email path in ``processing.py``: an inbound ticket
message, history events, a waiting ticket back to Open, closed tickets left
alone. Portal and API call these inside their transaction.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate import outbox
from mailgate import tickets as status_machine
from mailgate.agent_actions import clean_body, load_ticket, refuse_if_closed
from mailgate.directory import match_customer
from mailgate.errors import ActionRefused, InvalidValue
from mailgate.models import Participant, Team, Ticket, TicketLink, TicketMessage
from mailgate.notices import CUSTOMER_REPLY, Event
from mailgate.settings import Settings
from mailgate.ticket_records import customer_views, history, typed_message
from mailgate.web import notify

MAX_SUBJECT_CHARS = 500
_BLANKS = re.compile(r"[\x00-\x20]+")


def may_open(session: Session, settings: Settings, email: str) -> str | None:
    """None when ``email`` may open tickets under ``intake.policy``, else the reason."""
    policy = settings.intake.policy
    if policy == "anyone":
        return None
    customer = match_customer(email, customer_views(session))
    if policy == "known" and customer is None:
        return "Only addresses of our customer accounts can open tickets."
    if policy == "admins" and (customer is None or email.lower() not in customer.admins):
        return "Only the administrators of a customer account can open tickets."
    return None


def open_ticket(
    session: Session,
    *,
    settings: Settings,
    requester: str,
    subject: str,
    body: str,
    type_: str,
    at: datetime,
    via: str = "portal",
    requester_name: str = "",
    priority: str | None = None,
    actor: str | None = None,
    follow_up_of: int | None = None,
) -> Ticket:
    """A new ticket from ``requester``; they get the same acknowledgement as by email.

    ``follow_up_of`` links the new ticket to an earlier (typically closed) one."""
    requester = requester.strip().lower()
    # Runs of ASCII spaces and controls (folded headers, tabs) become one space.
    subject = " ".join(part for part in _BLANKS.split(subject) if part)
    if not subject:
        raise InvalidValue("the subject is empty")
    if len(subject) > MAX_SUBJECT_CHARS:
        raise InvalidValue(f"the subject is longer than {MAX_SUBJECT_CHARS} characters")
    if type_ not in settings.tickets.types:
        raise InvalidValue(f"unknown type {type_!r} (known: {', '.join(settings.tickets.types)})")
    priority = priority or settings.defaults.priority
    if priority not in settings.tickets.priorities:
        known = ", ".join(settings.tickets.priorities)
        raise InvalidValue(f"unknown priority {priority!r} (known: {known})")
    text = clean_body(body)
    reason = may_open(session, settings, requester)
    if reason:
        raise ActionRefused(reason)
    customer = match_customer(requester, customer_views(session))
    team_id = session.scalar(select(Team.id).where(Team.name == settings.defaults.team))
    ticket = Ticket(
        customer_id=customer.id if customer else None,
        requester=requester,
        requester_name=requester_name.strip()[:255],
        subject=subject,
        type=type_,
        priority=priority,
        status=status_machine.new_ticket_status(settings.tickets),
        team_id=team_id,
        language=(customer.language if customer else "") or settings.defaults.language,
        tags=[],
        created_at=at,
        updated_at=at,
    )
    session.add(ticket)
    session.flush()
    ticket.number = ticket.id
    session.add(Participant(ticket_id=ticket.id, email=requester, role="requester"))
    typed_message(
        session,
        ticket,
        direction="inbound",
        author_email=requester,
        author_name=requester_name,
        text=text,
        at=at,
        via=via,
    )
    history(session, ticket, at, actor or requester, "created", detail={"via": via})
    if follow_up_of is not None:
        earlier = session.scalar(select(Ticket).where(Ticket.number == follow_up_of))
        if earlier is not None:
            session.add(TicketLink(ticket_id=ticket.id, other_ticket_id=earlier.id, kind="follows"))
            session.add(
                TicketLink(ticket_id=earlier.id, other_ticket_id=ticket.id, kind="followed_by")
            )
            history(session, ticket, at, actor or requester, "linked", new=str(earlier.number))
    notify.notify(
        session,
        settings=settings,
        kind=notify.ACKNOWLEDGEMENT,
        recipient=requester,
        ticket=ticket,
        cause=f"ack:{ticket.id}",
        at=at,
    )
    return ticket


def reply(
    session: Session,
    *,
    settings: Settings,
    number: int,
    author: str,
    body: str,
    at: datetime,
    via: str = "portal",
    author_name: str = "",
) -> TicketMessage:
    """A customer's reply; refused on a closed ticket, which must not change (invariant 4).

    The caller has checked that ``author`` may see the ticket."""
    text = clean_body(body)
    author = author.strip().lower()
    ticket = load_ticket(session, number)
    refuse_if_closed(ticket, settings)
    change = status_machine.after_customer_reply(ticket.status, settings.tickets)
    if change is not None:
        ticket.status = change.new
        history(
            session, ticket, at, author, "status", field="status", old=change.old, new=change.new
        )
    ticket.updated_at = at
    known = {p.email for p in ticket.participants} | {ticket.requester}
    if author not in known:
        # An account admin answering a colleague's ticket takes part from now on.
        session.add(Participant(ticket_id=ticket.id, email=author, role="cc"))
    message = typed_message(
        session,
        ticket,
        direction="inbound",
        author_email=author,
        author_name=author_name,
        text=text,
        at=at,
        via=via,
    )
    history(session, ticket, at, author, "customer_reply", detail={"via": via})
    # The same decision as a reply by mail: the assignee is told, within the rate limit.
    assert ticket.number is not None
    event = Event(
        kind=CUSTOMER_REPLY,
        cause=f"customer_reply:{message.id}",
        ticket_number=ticket.number,
        requester=ticket.requester,
        sender=author,
        assignee=outbox.assignee_email(session, ticket),
        status=ticket.status,
    )
    outbox.notify(session, event, ticket, settings=settings, now=at)
    return message
