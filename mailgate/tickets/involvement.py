"""Who else works on a ticket (issue 22): helpers, agents besides its owner (the
assignee), and departments, teams besides its own. One function each, from the CLI,
the agent portal and the API (``PATCH``), with the row lock and a history event.

The owner stays the one assignee: a helper is told when a customer replies (with
``tickets.notify_helpers``), finds the ticket under "My tickets", and does not count in
``least_open`` (which weighs owners' work only). A department finds the ticket under
its team in the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailgate.core.errors import ActionRefused, InvalidValue
from mailgate.core.settings import Settings
from mailgate.db.models import Agent, Team, Ticket, TicketDepartment, TicketHelper
from mailgate.tickets.actors import Actor
from mailgate.tickets.records import history, lock_ticket, refuse_if_closed


def set_helpers(
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
    """Add and remove helpers by email (``exactly``: replace them all). A helper is an
    active agent other than the owner; removing one who does not help is refused, so a
    typo does not pass unnoticed."""
    ticket = lock_ticket(session, number=number)
    current: dict[str, int] = {
        email: id_
        for email, id_ in session.execute(
            select(Agent.email, Agent.id)
            .join(TicketHelper, TicketHelper.agent_id == Agent.id)
            .where(TicketHelper.ticket_id == ticket.id)
            .order_by(Agent.email)
        )
    }
    wanted = [_email(e) for e in (exactly if exactly is not None else add)]
    dropped = [_email(e) for e in remove]
    missing = [e for e in dropped if e not in current]
    if missing:
        raise InvalidValue(f"{missing[0]} does not help on ticket #{number}")
    base = [] if exactly is not None else list(current)
    new = [e for e in dict.fromkeys([*base, *wanted]) if e not in dropped]
    if set(new) == set(current):
        return ticket  # nothing to change: allowed on a closed ticket too
    refuse_if_closed(ticket, settings)
    agents = {a.email: a for a in session.scalars(select(Agent).where(Agent.email.in_(new)))}
    owner = ticket.assignee_id
    for email in new:
        agent = agents.get(email)
        if email not in current and (agent is None or not agent.active):
            raise InvalidValue(f"no active agent {email!r}")
        if agent is not None and agent.id == owner:
            raise ActionRefused(f"{email} owns ticket #{number}: the owner is not a helper")
    gone = [current[e] for e in current if e not in new]
    if gone:
        session.execute(
            delete(TicketHelper).where(
                TicketHelper.ticket_id == ticket.id, TicketHelper.agent_id.in_(gone)
            )
        )
    session.add_all(
        TicketHelper(ticket_id=ticket.id, agent_id=agents[e].id) for e in new if e not in current
    )
    ticket.helpers_count = len(new)
    ticket.updated_at = at
    history(
        session,
        ticket,
        at,
        actor.label,
        "helpers",
        field="helpers",
        old=",".join(current),
        new=",".join(new),
    )
    return ticket


def set_departments(
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
    """Add and remove involved departments by team name (``exactly``: replace them
    all). The ticket's own team is its owning department, not one of these."""
    ticket = lock_ticket(session, number=number)
    current: dict[str, int] = {
        name: id_
        for name, id_ in session.execute(
            select(Team.name, Team.id)
            .join(TicketDepartment, TicketDepartment.team_id == Team.id)
            .where(TicketDepartment.ticket_id == ticket.id)
            .order_by(Team.name)
        )
    }
    wanted = [t.strip() for t in (exactly if exactly is not None else add)]
    dropped = [t.strip() for t in remove]
    missing = [t for t in dropped if t not in current]
    if missing:
        raise InvalidValue(f"team {missing[0]!r} is not a department of ticket #{number}")
    base = [] if exactly is not None else list(current)
    new = [t for t in dict.fromkeys([*base, *wanted]) if t not in dropped]
    if set(new) == set(current):
        return ticket
    refuse_if_closed(ticket, settings)
    teams = {t.name: t for t in session.scalars(select(Team).where(Team.name.in_(new)))}
    for name in new:
        team = teams.get(name)
        if team is None:
            raise InvalidValue(f"no team {name!r}")
        if team.id == ticket.team_id:
            raise ActionRefused(f"{name} is the team of ticket #{number}, its owning department")
    gone = [current[t] for t in current if t not in new]
    if gone:
        session.execute(
            delete(TicketDepartment).where(
                TicketDepartment.ticket_id == ticket.id, TicketDepartment.team_id.in_(gone)
            )
        )
    session.add_all(
        TicketDepartment(ticket_id=ticket.id, team_id=teams[t].id) for t in new if t not in current
    )
    ticket.updated_at = at
    history(
        session,
        ticket,
        at,
        actor.label,
        "departments",
        field="departments",
        old=",".join(current),
        new=",".join(new),
    )
    return ticket


def _email(text: str) -> str:
    email = text.strip().lower()
    if "@" not in email:
        raise InvalidValue(f"a helper is an agent's email address, got {text!r}")
    return email
