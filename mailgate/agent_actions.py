"""What agents do to a ticket: reply, note, change status, close, assign, link, set dates.

One function per action, each taking a session and values, recording history
and writing notices through ``web.notify`` in the caller's transaction. The
portal, the API and the CLI call exactly these, so the rules hold everywhere:
closing is final, and every change is a history event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate import sla, sla_check
from mailgate import tickets as status_machine
from mailgate.errors import ActionRefused, InvalidValue, NotFound
from mailgate.models import Agent, HistoryEvent, Team, Ticket, TicketLink, TicketMessage
from mailgate.settings import Settings
from mailgate.ticket_records import history, typed_message
from mailgate.web import notify

CLOSED_EXPLANATION = (
    "This ticket is closed and cannot change any more. Please open a new ticket; "
    "it can refer to this one."
)
MAX_BODY_CHARS = 100_000
ASCII_BLANK = "".join(chr(c) for c in range(0x21))


@dataclass(frozen=True)
class Actor:
    """Who acts: an agent, or an integration (``api:<name>``) with no address of its own."""

    label: str
    email: str = ""
    name: str = ""
    agent_id: int | None = None


def agent_actor(agent: Agent) -> Actor:
    return Actor(label=agent.email, email=agent.email, name=agent.name, agent_id=agent.id)


def load_ticket(session: Session, number: int) -> Ticket:
    """The ticket with public number ``number``, locked for update where the database can."""
    ticket = session.scalar(select(Ticket).where(Ticket.number == number).with_for_update())
    if ticket is None:
        raise NotFound(f"no ticket #{number}")
    return ticket


def clean_body(body: str) -> str:
    """A reply or note as stored: line endings normalised, surrounding blank lines dropped.

    Blank means nothing but ASCII spaces and control characters: one plain rule that the
    API's schema can state exactly."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = text.strip(ASCII_BLANK)
    if not text:
        raise InvalidValue("the message is empty")
    if len(text) > MAX_BODY_CHARS:
        raise InvalidValue(f"the message is longer than {MAX_BODY_CHARS} characters")
    return text


def _category(status: str, settings: Settings) -> str | None:
    try:
        return settings.tickets.category_of(status)
    except KeyError:
        return None  # a status no longer in the config: leave it alone


def refuse_if_closed(ticket: Ticket, settings: Settings) -> None:
    """Closing is final (invariant 4): refuse any change a closed ticket would show."""
    if status_machine.is_closed(ticket.status, settings.tickets):
        raise ActionRefused(f"ticket #{ticket.number} is {ticket.status}. {CLOSED_EXPLANATION}")


def _last_inbound_message_id(session: Session, ticket: Ticket) -> str:
    return (
        session.scalar(
            select(TicketMessage.message_id)
            .where(
                TicketMessage.ticket_id == ticket.id,
                TicketMessage.direction == "inbound",
                TicketMessage.message_id != "",
            )
            .order_by(TicketMessage.id.desc())
            .limit(1)
        )
        or ""
    )


def reply(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    body: str,
    at: datetime,
    via: str = "portal",
    response: str = "",
) -> TicketMessage:
    """An answer to the requester; the requester gets an "agent replied" notice.

    ``response`` names the canned response the text came from, for the history."""
    text = clean_body(body)
    ticket = load_ticket(session, number)
    refuse_if_closed(ticket, settings)
    message = typed_message(
        session,
        ticket,
        direction="outbound",
        author_email=actor.email or settings.outbound.from_address,
        author_name=actor.name,
        text=text,
        at=at,
        via=via,
        to=[ticket.requester],
    )
    if ticket.first_response_at is None:
        sla_check.record_met_late(session, ticket, settings, sla.FIRST_RESPONSE, at)
        ticket.first_response_at = at
    if _category(ticket.status, settings) == "new":
        # An answered ticket is being worked on.
        _set_status(session, ticket, settings.tickets.first_status("active"), actor, at)
    ticket.updated_at = at
    detail = {"message": str(message.id), **({"response": response} if response else {})}
    history(session, ticket, at, actor.label, "agent_reply", detail=detail)
    notify.notify(
        session,
        settings=settings,
        kind=notify.AGENT_REPLIED,
        recipient=ticket.requester,
        ticket=ticket,
        cause=f"agent_reply:{message.id}",
        at=at,
        in_reply_to=_last_inbound_message_id(session, ticket),
    )
    return message


def note(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    body: str,
    at: datetime,
    via: str = "portal",
) -> TicketMessage:
    """An internal note: agents only, no notice; allowed on closed tickets (it changes
    nothing a customer sees)."""
    text = clean_body(body)
    ticket = load_ticket(session, number)
    message = typed_message(
        session,
        ticket,
        direction="note",
        author_email=actor.email,
        author_name=actor.name,
        text=text,
        at=at,
        via=via,
        subject="",
    )
    history(session, ticket, at, actor.label, "note", detail={"message": str(message.id)})
    return message


def _set_status(
    session: Session, ticket: Ticket, new: str, actor: Actor, at: datetime
) -> HistoryEvent:
    old = ticket.status
    ticket.status = new
    ticket.updated_at = at
    return history(session, ticket, at, actor.label, "status", field="status", old=old, new=new)


def change_status(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    status: str,
    at: datetime,
) -> Ticket:
    """Move a ticket to a configured status; the requester gets a status notice.

    Setting the status it already has does nothing. Leaving the closed category is
    refused (closing is final)."""
    if status not in {s.name for s in settings.tickets.statuses}:
        known = ", ".join(s.name for s in settings.tickets.statuses)
        raise InvalidValue(f"unknown status {status!r} (known: {known})")
    ticket = load_ticket(session, number)
    if ticket.status == status:
        return ticket
    if not status_machine.can_change(ticket.status, status, settings.tickets):
        raise ActionRefused(f"ticket #{ticket.number} is {ticket.status}. {CLOSED_EXPLANATION}")
    event = _set_status(session, ticket, status, actor, at)
    if status_machine.is_closed(status, settings.tickets) and ticket.closed_at is None:
        # Closing ends both clocks: a target it passed unseen is still a breach.
        if ticket.first_response_at is None:
            sla_check.record_met_late(session, ticket, settings, sla.FIRST_RESPONSE, at)
        sla_check.record_met_late(session, ticket, settings, sla.RESOLUTION, at)
        ticket.closed_at = at
    notify.notify(
        session,
        settings=settings,
        kind=notify.STATUS_CHANGED,
        recipient=ticket.requester,
        ticket=ticket,
        cause=f"status:{event.id}",
        at=at,
    )
    return ticket


def close_status(settings: Settings) -> str:
    """The status "close" means: the last configured one in the closed category
    (with the defaults, Closed rather than Resolved)."""
    return [s.name for s in settings.tickets.statuses if s.category == "closed"][-1]


def close(
    session: Session, *, settings: Settings, number: int, actor: Actor, at: datetime
) -> Ticket:
    """Close a ticket for good; refused when it is already closed."""
    ticket = load_ticket(session, number)
    refuse_if_closed(ticket, settings)
    return change_status(
        session, settings=settings, number=number, actor=actor, status=close_status(settings), at=at
    )


def assign(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    assignee: str | None,
    at: datetime,
) -> Ticket:
    """Give a ticket to an active agent (``None`` unassigns it); the new assignee gets a
    notice unless they assigned it to themselves."""
    ticket = load_ticket(session, number)
    refuse_if_closed(ticket, settings)
    agent = None
    if assignee:
        agent = session.scalar(select(Agent).where(Agent.email == assignee.strip().lower()))
        if agent is None or not agent.active:
            raise InvalidValue(f"no active agent {assignee!r}")
    new_id = agent.id if agent else None
    if new_id == ticket.assignee_id:
        return ticket
    old = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    ticket.assignee_id = new_id
    ticket.updated_at = at
    event = history(
        session,
        ticket,
        at,
        actor.label,
        "assigned",
        field="assignee",
        old=old.email if old else "",
        new=agent.email if agent else "",
    )
    if agent is not None and agent.id != actor.agent_id:
        notify.notify(
            session,
            settings=settings,
            kind=notify.ASSIGNED,
            recipient=agent.email,
            ticket=ticket,
            cause=f"assign:{event.id}",
            at=at,
            language=settings.defaults.language,
        )
    return ticket


def set_team(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    team: str | None,
    at: datetime,
) -> Ticket:
    """Move a ticket to another team (``None``: no team)."""
    ticket = load_ticket(session, number)
    refuse_if_closed(ticket, settings)
    row = None
    if team:
        row = session.scalar(select(Team).where(Team.name == team))
        if row is None:
            raise InvalidValue(f"no team {team!r}")
    new_id = row.id if row else None
    if new_id == ticket.team_id:
        return ticket
    old = session.get(Team, ticket.team_id) if ticket.team_id else None
    ticket.team_id = new_id
    ticket.updated_at = at
    history(
        session,
        ticket,
        at,
        actor.label,
        "team",
        field="team",
        old=old.name if old else "",
        new=row.name if row else "",
    )
    return ticket


# Dates an agent sets on a ticket (DESIGN.md §4), by the name the CLI and history use.
DATE_FIELDS = {"follow_up": "follow_up_at", "action_required": "action_required_at"}


def set_dates(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    dates: dict[str, datetime | None],
    at: datetime,
) -> Ticket:
    """Set or clear (``None``) the follow-up and action-required dates named in ``dates``.

    Each change is a history event; the SLA check reminds the assignee when one is
    reached. A closed ticket refuses, and so does a date in the past."""
    ticket = load_ticket(session, number)
    refuse_if_closed(ticket, settings)
    for name, when in dates.items():
        column = DATE_FIELDS.get(name)
        if column is None:
            raise InvalidValue(f"unknown date {name!r} (known: {', '.join(DATE_FIELDS)})")
        if when is not None and when < at:
            raise InvalidValue(f"the {name.replace('_', '-')} date {when.isoformat()} is past")
        old: datetime | None = getattr(ticket, column)
        if old == when:
            continue
        setattr(ticket, column, when)
        ticket.updated_at = at
        shown = [v.isoformat() if v else "" for v in (old, when)]
        history(session, ticket, at, actor.label, "date", field=name, old=shown[0], new=shown[1])
    return ticket


def link(
    session: Session,
    *,
    number: int,
    other_number: int,
    actor: Actor,
    at: datetime,
    kind: str = "related",
) -> None:
    """Link two tickets both ways; allowed on closed tickets (a new ticket often
    follows a closed one). Linking twice changes nothing."""
    if number == other_number:
        raise InvalidValue("a ticket cannot be linked to itself")
    ticket = load_ticket(session, number)
    other = session.scalar(select(Ticket).where(Ticket.number == other_number))
    if other is None:
        raise InvalidValue(f"no ticket #{other_number} to link to")
    for a, b in ((ticket, other), (other, ticket)):
        exists = session.scalar(
            select(TicketLink.id).where(
                TicketLink.ticket_id == a.id,
                TicketLink.other_ticket_id == b.id,
                TicketLink.kind == kind,
            )
        )
        if exists is None:
            session.add(TicketLink(ticket_id=a.id, other_ticket_id=b.id, kind=kind))
            history(session, a, at, actor.label, "linked", new=str(b.number), detail={"kind": kind})
