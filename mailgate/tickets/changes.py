"""Changes agents make to a ticket's fields: status, close, assignee, team, priority,
type, tags, dates, links.

One function per change, the same from the portal, the API and the CLI. Each takes the
ticket's row lock before it decides (``records.lock_ticket``), so two changes to one
ticket, or a change and a customer's mail, are applied one after the other.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core import notices, sla
from mailgate.core import statuses as status_machine
from mailgate.core.errors import InvalidValue
from mailgate.core.settings import SYSTEM_LINK_KINDS, Settings
from mailgate.db.models import Agent, HistoryEvent, Team, Ticket, TicketLink
from mailgate.tickets import sla_check, triggers
from mailgate.tickets.actors import Actor
from mailgate.tickets.notify import notify, tell_requester, tell_webhooks, ticket_event
from mailgate.tickets.records import closed_refusal, history, lock_ticket, refuse_if_closed


def set_status(
    session: Session, ticket: Ticket, new: str, actor: Actor, at: datetime, *, settings: Settings
) -> HistoryEvent:
    """Set the status of ``ticket`` (locked, checked by the caller) with its history event.

    Webhooks hear of it here, every status change an agent, a trigger or a close makes
    passing through (a status notice to the requester, if any, is the caller's)."""
    old = ticket.status
    ticket.status = new
    ticket.updated_at = at
    event = history(
        session, ticket, at, actor.label, "status", field="status", old=old, new=new, flush=True
    )
    kind, cause = notices.STATUS_CHANGE, f"status:{event.id}"
    values = {"status": new, "old_status": old}
    tell_webhooks(session, ticket, kind, cause, settings=settings, now=at, **values)
    return event


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
    check_status(settings, status)
    ticket = lock_ticket(session, number=number)
    if ticket.status == status:
        return ticket
    return _move(session, ticket, status, settings=settings, actor=actor, at=at)


def check_status(settings: Settings, status: str) -> None:
    """Refuse a status that is not configured, naming the ones that are."""
    if status not in {s.name for s in settings.tickets.statuses}:
        known = ", ".join(s.name for s in settings.tickets.statuses)
        raise InvalidValue(
            "unknown status %(status)r (known: %(known)s)", status=status, known=known
        )


def enter_status(
    session: Session, ticket: Ticket, status: str, *, settings: Settings, actor: Actor, at: datetime
) -> HistoryEvent:
    """Move ``ticket`` (locked) to ``status`` (configured, not its own) without a notice:
    the caller tells the requester. Refused when the ticket is closed."""
    if not status_machine.can_change(ticket.status, status, settings.tickets):
        raise closed_refusal(ticket)
    event = set_status(session, ticket, status, actor, at, settings=settings)
    if status_machine.is_closed(status, settings.tickets) and ticket.closed_at is None:
        # Closing ends both clocks: a target it passed unseen is still a breach.
        if ticket.first_response_at is None:
            sla_check.record_met_late(session, ticket, settings, sla.FIRST_RESPONSE, at)
        sla_check.record_met_late(session, ticket, settings, sla.RESOLUTION, at)
        ticket.closed_at = at
    return event


def _move(
    session: Session, ticket: Ticket, status: str, *, settings: Settings, actor: Actor, at: datetime
) -> Ticket:
    """Set the status of ``ticket`` (locked) and tell the requester."""
    old = ticket.status
    event = enter_status(session, ticket, status, settings=settings, actor=actor, at=at)
    cause = f"status:{event.id}"
    tell_requester(session, ticket, notices.STATUS_CHANGE, cause, settings=settings, now=at)
    fire = triggers.fire
    fire(session, ticket, "status_changed", settings=settings, actor=actor, at=at, from_status=old)
    return ticket


def end_wait(
    session: Session,
    ticket: Ticket,
    change: status_machine.StatusChange,
    *,
    author: str,
    settings: Settings,
    at: datetime,
) -> None:
    """A customer's reply (by ``author``) takes ``ticket`` (locked) out of its wait, as
    ``change`` says: no status notice (the reply's own tells the agents); webhooks hear
    of it."""
    ticket.status = change.new
    moved = history(
        session,
        ticket,
        at,
        author,
        "status",
        field="status",
        old=change.old,
        new=change.new,
        flush=bool(settings.webhooks),  # their rows are named after it
    )
    values = {"status": change.new, "old_status": change.old}
    kind, cause = notices.STATUS_CHANGE, f"status:{moved.id}"
    tell_webhooks(session, ticket, kind, cause, settings=settings, now=at, **values)


def close_status(settings: Settings) -> str:
    """The status "close" means: the last configured one in the closed category
    (with the defaults, Closed rather than Resolved)."""
    return [s.name for s in settings.tickets.statuses if s.category == "closed"][-1]


def close(
    session: Session, *, settings: Settings, number: int, actor: Actor, at: datetime
) -> Ticket:
    """Close a ticket for good; refused when it is already closed."""
    ticket = lock_ticket(session, number=number)
    refuse_if_closed(ticket, settings)
    return _move(session, ticket, close_status(settings), settings=settings, actor=actor, at=at)


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
    ticket = lock_ticket(session, number=number)
    refuse_if_closed(ticket, settings)
    agent = None
    if assignee:
        agent = session.scalar(select(Agent).where(Agent.email == assignee.strip().lower()))
        if agent is None or not agent.active:
            raise InvalidValue("no active agent %(agent)r", agent=assignee)
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
        flush=True,  # the notice is named after it
    )
    if agent is not None:
        # ``sender``: an agent who took it themselves is not told; its channels and
        # webhooks are.
        me = agent.email if agent.id == actor.agent_id else ""
        cause = f"assign:{event.id}"
        assigned = ticket_event(session, ticket, notices.ASSIGNMENT, cause, sender=me)
        notify(session, assigned, ticket=ticket, settings=settings, now=at)
        triggers.fire(session, ticket, "assigned", settings=settings, actor=actor, at=at)
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
    ticket = lock_ticket(session, number=number)
    refuse_if_closed(ticket, settings)
    row = None
    if team:
        row = session.scalar(select(Team).where(Team.name == team))
        if row is None:
            raise InvalidValue("no team %(team)r", team=team)
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
    triggers.fire(session, ticket, "team_changed", settings=settings, actor=actor, at=at)
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
    ticket = lock_ticket(session, number=number)
    refuse_if_closed(ticket, settings)
    date_set = False
    for name, when in dates.items():
        column = DATE_FIELDS.get(name)
        if column is None:
            known = ", ".join(DATE_FIELDS)
            raise InvalidValue("unknown date %(date)r (known: %(known)s)", date=name, known=known)
        if when is not None and when < at:
            # One sentence a date, for the translators.
            if name == "follow_up":
                raise InvalidValue("the follow-up date %(when)s is past", when=when.isoformat())
            raise InvalidValue("the action-required date %(when)s is past", when=when.isoformat())
        old: datetime | None = getattr(ticket, column)
        if old == when:
            continue
        setattr(ticket, column, when)
        ticket.updated_at = at
        shown = [v.isoformat() if v else "" for v in (old, when)]
        history(session, ticket, at, actor.label, "date", field=name, old=shown[0], new=shown[1])
        date_set = date_set or when is not None
    if date_set:
        triggers.fire(session, ticket, "due_date_set", settings=settings, actor=actor, at=at)
    return ticket


def link(
    session: Session,
    *,
    number: int,
    other_number: int,
    actor: Actor,
    at: datetime,
    kind: str = "related",
    settings: Settings | None = None,
) -> None:
    """Link two tickets both ways; allowed on closed tickets (a new ticket often
    follows a closed one). Linking twice changes nothing.

    With ``settings``, ``kind`` is one of ``tickets.link_kinds`` (by its name or its
    reverse's) and the other ticket gets the reverse ("duplicate of" #2, and #2 is
    "duplicated by"); without, the same kind both ways."""
    if kind in SYSTEM_LINK_KINDS:
        # Written only by what they record: a merge moves the conversation, a link alone
        # would claim it moved.
        raise InvalidValue("%(kind)r links are made by mailgate itself, not by hand", kind=kind)
    forward, reverse = kind, kind
    if settings is not None:
        pair = settings.tickets.link_pair(kind)
        if pair is None:
            known = ", ".join(settings.tickets.link_kinds)
            raise InvalidValue(
                "unknown link kind %(kind)r (known: %(known)s)", kind=kind, known=known
            )
        forward, reverse = pair
    if number == other_number:
        raise InvalidValue("a ticket cannot be linked to itself")
    ticket = lock_ticket(session, number=number)
    other = session.scalar(select(Ticket).where(Ticket.number == other_number))
    if other is None:
        raise InvalidValue("no ticket #%(number)s to link to", number=other_number)
    for a, b, name in ((ticket, other, forward), (other, ticket, reverse)):
        exists = session.scalar(
            select(TicketLink.id).where(
                TicketLink.ticket_id == a.id,
                TicketLink.other_ticket_id == b.id,
                TicketLink.kind == name,
            )
        )
        if exists is None:
            session.add(TicketLink(ticket_id=a.id, other_ticket_id=b.id, kind=name))
            history(session, a, at, actor.label, "linked", new=str(b.number), detail={"kind": name})
