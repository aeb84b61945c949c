"""Changes agents make to a ticket's fields: status, close, assignee, team, priority,
type, tags, dates, links.

One function per change, the same from the portal, the API and the CLI. Each takes the
ticket's row lock before it decides (``records.lock_ticket``), so two changes to one
ticket, or a change and a customer's mail, are applied one after the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core import notices, sla
from mailgate.core import statuses as status_machine
from mailgate.core.errors import ActionRefused, InvalidValue
from mailgate.core.settings import Settings
from mailgate.db.models import Agent, HistoryEvent, Team, Ticket, TicketLink
from mailgate.tickets import sla_check
from mailgate.tickets.actors import Actor
from mailgate.tickets.notify import notify, tell_requester, ticket_event
from mailgate.tickets.records import CLOSED_EXPLANATION, history, lock_ticket, refuse_if_closed


def set_status(
    session: Session, ticket: Ticket, new: str, actor: Actor, at: datetime
) -> HistoryEvent:
    """Set the status of ``ticket`` (locked, checked by the caller) with its history event."""
    old = ticket.status
    ticket.status = new
    ticket.updated_at = at
    return history(
        session, ticket, at, actor.label, "status", field="status", old=old, new=new, flush=True
    )


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
    ticket = lock_ticket(session, number=number)
    if ticket.status == status:
        return ticket
    if not status_machine.can_change(ticket.status, status, settings.tickets):
        raise ActionRefused(f"ticket #{ticket.number} is {ticket.status}. {CLOSED_EXPLANATION}")
    return _move(session, ticket, status, settings=settings, actor=actor, at=at)


def _move(
    session: Session, ticket: Ticket, status: str, *, settings: Settings, actor: Actor, at: datetime
) -> Ticket:
    """Set the status of ``ticket`` (locked, the change allowed) and tell the requester."""
    event = set_status(session, ticket, status, actor, at)
    if status_machine.is_closed(status, settings.tickets) and ticket.closed_at is None:
        # Closing ends both clocks: a target it passed unseen is still a breach.
        if ticket.first_response_at is None:
            sla_check.record_met_late(session, ticket, settings, sla.FIRST_RESPONSE, at)
        sla_check.record_met_late(session, ticket, settings, sla.RESOLUTION, at)
        ticket.closed_at = at
    cause = f"status:{event.id}"
    tell_requester(session, ticket, notices.STATUS_CHANGE, cause, settings=settings, now=at)
    return ticket


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
        flush=True,  # the notice is named after it
    )
    if agent is not None and agent.id != actor.agent_id:
        assigned = ticket_event(session, ticket, notices.ASSIGNMENT, f"assign:{event.id}")
        notify(session, assigned, ticket=ticket, settings=settings, now=at)
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
    ticket = lock_ticket(session, number=number)
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
    settings: Settings | None = None,
) -> None:
    """Link two tickets both ways; allowed on closed tickets (a new ticket often
    follows a closed one). Linking twice changes nothing.

    With ``settings``, ``kind`` is one of ``tickets.link_kinds`` (by its name or its
    reverse's) and the other ticket gets the reverse ("duplicate of" #2, and #2 is
    "duplicated by"); without, the same kind both ways."""
    forward, reverse = kind, kind
    if settings is not None:
        pair = settings.tickets.link_pair(kind)
        if pair is None:
            known = ", ".join(settings.tickets.link_kinds)
            raise InvalidValue(f"unknown link kind {kind!r} (known: {known})")
        forward, reverse = pair
    if number == other_number:
        raise InvalidValue("a ticket cannot be linked to itself")
    ticket = lock_ticket(session, number=number)
    other = session.scalar(select(Ticket).where(Ticket.number == other_number))
    if other is None:
        raise InvalidValue(f"no ticket #{other_number} to link to")
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


def set_priority(
    session: Session, *, settings: Settings, number: int, actor: Actor, priority: str, at: datetime
) -> Ticket:
    """Give a ticket another configured priority."""
    return _set_choice(
        session, settings, "priority", number=number, actor=actor, value=priority, at=at
    )


def set_type(
    session: Session, *, settings: Settings, number: int, actor: Actor, type_: str, at: datetime
) -> Ticket:
    """Give a ticket another configured type."""
    return _set_choice(session, settings, "type", number=number, actor=actor, value=type_, at=at)


def _set_choice(
    session: Session,
    settings: Settings,
    field: str,
    *,
    number: int,
    actor: Actor,
    value: str,
    at: datetime,
) -> Ticket:
    known = settings.tickets.priorities if field == "priority" else settings.tickets.types
    if value not in known:
        raise InvalidValue(f"unknown {field} {value!r} (known: {', '.join(known)})")
    ticket = lock_ticket(session, number=number)
    old = getattr(ticket, field)
    if old == value:
        return ticket
    refuse_if_closed(ticket, settings)
    setattr(ticket, field, value)
    ticket.updated_at = at
    history(session, ticket, at, actor.label, field, field=field, old=old, new=value)
    return ticket


MAX_TAG_CHARS = 64


def set_tags(
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
    """Add and remove tags (``exactly``: replace them all). Tags are one word each, kept
    in the order they were first given; the history shows the list before and after."""
    wanted = [_tag(t) for t in (exactly if exactly is not None else add)]
    dropped = {_tag(t) for t in remove}
    ticket = lock_ticket(session, number=number)
    old = list(ticket.tags)
    base = [] if exactly is not None else old
    new = [t for t in dict.fromkeys([*base, *wanted]) if t not in dropped]
    if new == old:
        return ticket  # nothing to change: allowed on a closed ticket too
    refuse_if_closed(ticket, settings)
    ticket.tags = new
    ticket.updated_at = at
    history(
        session, ticket, at, actor.label, "tags", field="tags", old=",".join(old), new=",".join(new)
    )
    return ticket


def _tag(text: str) -> str:
    tag = text.strip().lower()
    if not tag or len(tag) > MAX_TAG_CHARS or any(c.isspace() or c == "," for c in tag):
        raise InvalidValue(
            f"a tag is one word of 1 to {MAX_TAG_CHARS} characters, without commas: {text!r}"
        )
    return tag


# The fields apply_fields changes, in the order it changes them: the status last, so a
# change that closes the ticket comes after the others instead of refusing them.
FIELDS = ("type", "priority", "team", "tags", "assignee", "status")


def apply_fields(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    fields: Mapping[str, Any],
    at: datetime,
) -> Ticket:
    """Several changes at once, each by its own function above (its checks, its history
    event, its notice), in one transaction: all of them are made or none is. ``team``
    and ``assignee`` may be None (none); ``tags`` replaces the tags."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise InvalidValue(f"unknown field {unknown[0]!r} (known: {', '.join(FIELDS)})")
    ticket = lock_ticket(session, number=number)
    for name in (f for f in FIELDS if f in fields):
        value = fields[name]
        if name == "type":
            ticket = set_type(
                session, settings=settings, number=number, actor=actor, type_=value, at=at
            )
        elif name == "priority":
            ticket = set_priority(
                session, settings=settings, number=number, actor=actor, priority=value, at=at
            )
        elif name == "team":
            ticket = set_team(
                session, settings=settings, number=number, actor=actor, team=value, at=at
            )
        elif name == "tags":
            ticket = set_tags(
                session, settings=settings, number=number, actor=actor, exactly=value, at=at
            )
        elif name == "assignee":
            ticket = assign(
                session, settings=settings, number=number, actor=actor, assignee=value, at=at
            )
        else:
            ticket = change_status(
                session, settings=settings, number=number, actor=actor, status=value, at=at
            )
    return ticket
