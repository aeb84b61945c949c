"""Who else works on a ticket (issue 22): helpers, agents besides its owner (the
assignee), and departments, teams besides its own. One function each, from the CLI,
the agent portal and the API (``PATCH``), with the row lock and a history event.

The owner stays the one assignee: a helper is told when a customer replies (with
``tickets.notify_helpers``), finds the ticket under "My tickets", and does not count in
``least_open`` (which weighs owners' work only). A department finds the ticket under
its team in the queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailgate.core.errors import ActionRefused, InvalidValue
from mailgate.core.settings import Settings
from mailgate.db.models import Agent, Team, Ticket, TicketDepartment, TicketHelper
from mailgate.tickets import members
from mailgate.tickets.actors import Actor


def _email(text: str) -> str:
    email = text.strip().lower()
    if "@" not in email:
        raise InvalidValue("a helper is an agent's email address, got %(text)r", text=text)
    return email


def _check_helpers(
    ticket: Ticket, names: Sequence[str], rows: Mapping[str, Any], before: Mapping[str, int]
) -> None:
    for email in names:
        agent = rows.get(email)
        if email not in before and (agent is None or not agent.active):
            raise InvalidValue("no active agent %(agent)r", agent=email)
        if agent is not None and agent.id == ticket.assignee_id:
            raise ActionRefused(
                "%(agent)s owns ticket #%(number)s: the owner is not a helper",
                agent=email,
                number=ticket.number,
            )


def _check_departments(
    ticket: Ticket, names: Sequence[str], rows: Mapping[str, Any], before: Mapping[str, int]
) -> None:
    for name in names:
        team = rows.get(name)
        if team is None:
            raise InvalidValue("no team %(team)r", team=name)
        if team.id == ticket.team_id:
            raise ActionRefused(
                "%(team)s is the team of ticket #%(number)s, its owning department",
                team=name,
                number=ticket.number,
            )


HELPERS = members.MemberKind(
    action="helpers",
    model=Agent,
    name="email",
    link=TicketHelper,
    link_column="agent_id",
    not_there=lambda email, number: InvalidValue(
        "%(agent)s does not help on ticket #%(number)s", agent=email, number=number
    ),
    normalize=_email,
    check=_check_helpers,
    count="helpers_count",
)
DEPARTMENTS = members.MemberKind(
    action="departments",
    model=Team,
    name="name",
    link=TicketDepartment,
    link_column="team_id",
    not_there=lambda name, number: InvalidValue(
        "team %(team)r is not a department of ticket #%(number)s", team=name, number=number
    ),
    check=_check_departments,
)


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
    active agent other than the owner."""
    return members.set_members(
        session, HELPERS, settings=settings, number=number, actor=actor, at=at,
        add=add, remove=remove, exactly=exactly,
    )  # fmt: skip


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
    return members.set_members(
        session, DEPARTMENTS, settings=settings, number=number, actor=actor, at=at,
        add=add, remove=remove, exactly=exactly,
    )  # fmt: skip
