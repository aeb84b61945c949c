"""Rules and assignment applied to a new ticket, inside the transaction that opens it.

Every channel's new ticket comes through here (``opening.open_ticket``). The decisions
are pure (``rules.evaluate``, ``assignment.choose``); this module loads
their inputs, takes the lock that makes a round-robin slot or a least-open count
safe against a second worker, and records every change in the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from mailgate.core import rules
from mailgate.core.assignment import AgentView, Choice, choose, team_members
from mailgate.core.directory import CustomerView
from mailgate.core.settings import Settings
from mailgate.db import queries
from mailgate.db.models import Agent, HistoryEvent, Team, Ticket
from mailgate.db.store import lock_row
from mailgate.tickets.records import history

# Strategies whose choice reads state another worker may be changing at the same time.
_LOCKING = ("round_robin", "least_open")


def route_new_ticket(
    session: Session,
    ticket: Ticket,
    *,
    facts: rules.Facts,
    customer: CustomerView | None,
    settings: Settings,
    at: datetime,
    chosen: Chosen | None = None,
) -> None:
    """Apply the configured rules to ``ticket`` (just opened, by any channel), then
    assign it. ``chosen``: the team and assignee staff picked when they opened it,
    which win over the rules' and the team's strategy."""
    chosen = chosen or Chosen()
    outcome = rules.evaluate(settings.rules, facts)
    if outcome.matched:
        _apply_rules(session, ticket, outcome, at, keep_team=chosen.team)
    requested = outcome.get("assignee")
    by_rule = dict(outcome.set_by).get("assignee", "")
    if chosen.assignee:
        wanted: tuple[str, str] | None = (chosen.assignee, f"chosen by {chosen.by}")
    else:
        wanted = (str(requested).lower(), f"rule {by_rule}") if requested else None
    assign_new_ticket(
        session,
        ticket,
        requested=wanted,
        customer=customer,
        settings=settings,
        at=at,
    )


@dataclass(frozen=True)
class Chosen:
    """What staff chose when they opened a ticket for a customer (``tickets create``)."""

    team: bool = False  # the ticket's team was chosen: the rules do not move it
    assignee: str = ""  # an active agent's address
    by: str = ""  # who chose, for the history


def _apply_rules(
    session: Session, ticket: Ticket, outcome: rules.Outcome, at: datetime, *, keep_team: bool
) -> None:
    changes: dict[str, Any] = {}
    if outcome.get("type"):
        changes["type"] = (ticket.type, outcome.get("type"))
        ticket.type = outcome.get("type")
    if outcome.get("priority"):
        changes["priority"] = (ticket.priority, outcome.get("priority"))
        ticket.priority = outcome.get("priority")
    if outcome.get("team") and not keep_team:
        team_id = session.scalar(select(Team.id).where(Team.name == outcome.get("team")))
        if team_id is not None:
            changes["team"] = ("", outcome.get("team"))
            ticket.team_id = team_id
    if outcome.get("status"):
        changes["status"] = (ticket.status, outcome.get("status"))
        ticket.status = outcome.get("status")
    if outcome.get("tags") is not None:
        # Added to the tags the ticket opened with (e.g. the screening category).
        tags = list(dict.fromkeys([*ticket.tags, *outcome.get("tags")]))
        changes["tags"] = (",".join(ticket.tags), ",".join(tags))
        ticket.tags = tags
    set_by = dict(outcome.set_by)
    session.add(
        HistoryEvent(
            ticket_id=ticket.id,
            at=at,
            actor="rules",
            action="rules_applied",
            detail={
                "matched": list(outcome.matched),
                "set": {
                    field: {"old": old, "new": new, "rule": set_by[field]}
                    for field, (old, new) in changes.items()
                },
            },
        )
    )


def assign_new_ticket(
    session: Session,
    ticket: Ticket,
    *,
    requested: tuple[str, str] | None,
    customer: CustomerView | None,
    settings: Settings,
    at: datetime,
) -> None:
    """Give ``ticket`` an agent: the ``requested`` one (address, and why: a rule, or
    staff's choice) when available, else the team's strategy. No fit leaves it
    unassigned, with the reason in its history."""
    agents = _agent_views(session)
    by_id = {a.id: a for a in agents}
    by_email = {a.email: a for a in agents}
    note = ""
    if requested is not None:
        email_, why = requested
        wanted = by_email.get(email_)
        if wanted is not None and wanted.available:
            choice = Choice(wanted.id, why)
            _record(session, ticket, wanted, choice, settings=settings, at=at)
            return
        note = f"{why} named {email_}, who is not available; "
    team = session.get(Team, ticket.team_id) if ticket.team_id is not None else None
    if team is None:
        choice = Choice(None, note + "ticket has no team")
        _record(session, ticket, None, choice, settings=settings, at=at)
        return
    # Nobody to choose from (no available member): no cursor or count can change that,
    # so no lock is taken; every new ticket of the team would otherwise wait on its row
    # for nothing. The agents are the same either way, read once, before any lock.
    members = team_members(agents, team.name)
    if team.assignment in _LOCKING and members:
        # A row lock of the NO KEY UPDATE kind (lock_row's UPDATE): inserting the ticket
        # already took a KEY SHARE lock on the team row (its foreign key), which a plain
        # FOR UPDATE would wait on, so two workers would deadlock.
        team = lock_row(session, Team, team.id, touch=Team.rr_last_agent_id)
    open_counts: dict[int, int] = {}
    if team.assignment == "least_open" and members:
        open_counts = _open_counts(session, settings)
    owner = by_id.get(customer.owner_id) if customer and customer.owner_id else None
    choice = choose(
        team.assignment,
        team=team.name,
        agents=agents,
        owner=owner,
        last_agent_id=team.rr_last_agent_id,
        open_counts=open_counts,
        cap=team.cap,
    )
    if team.assignment == "round_robin" and choice.agent_id is not None:
        team.rr_last_agent_id = choice.agent_id
    choice = Choice(choice.agent_id, note + choice.reason)
    _record(session, ticket, by_id.get(choice.agent_id or -1), choice, settings=settings, at=at)


def _open_counts(session: Session, settings: Settings) -> dict[int, int]:
    # The open statuses by name, so the count reads the open tickets from the status
    # index; "NOT IN (closed)" read every ticket on each new one (issue 23).
    rows = session.execute(
        select(Ticket.assignee_id, func.count())
        .where(
            Ticket.assignee_id.is_not(None),
            Ticket.status.in_(queries.open_statuses(session, settings.tickets)),
        )
        .group_by(Ticket.assignee_id)
    ).all()
    return {agent_id: count for agent_id, count in rows if agent_id is not None}


def _agent_views(session: Session) -> tuple[AgentView, ...]:
    """Every agent as the pure choice sees them, read once per transaction (agents change
    only through the directory's commands, never inside a ticket's transaction)."""
    views: tuple[AgentView, ...] | None = session.info.get("agent_views")
    if views is None:
        views = _keep_agents(session, list(session.scalars(select(Agent))))
    return views


def _keep_agents(session: Session, rows: list[Agent]) -> tuple[AgentView, ...]:
    views = tuple(_view(a) for a in rows)
    session.info["agent_views"] = views
    # Held, so the session keeps them: the assignee's notice then finds its agent
    # without a query (the session holds its rows only while they are referenced).
    session.info["agent_rows"] = rows
    return views


def team_and_agents(session: Session, name: str) -> Team | None:
    """Team ``name``'s row, and every agent for the assignment that follows: one
    statement, the team joined to each agent (a team and a few dozen agents), where the
    two reads were two. None when there is no such team (the agents are then read only
    if the assignment needs them)."""
    if "agent_views" in session.info:
        return session.scalar(select(Team).where(Team.name == name))
    rows = session.execute(
        select(Team, Agent).join_from(Team, Agent, true(), isouter=True).where(Team.name == name)
    ).all()
    if not rows:
        return None
    _keep_agents(session, [agent for _, agent in rows if agent is not None])
    team: Team = rows[0][0]
    return team


def _view(agent: Agent) -> AgentView:
    return AgentView(agent.id, agent.email, agent.active, agent.away, tuple(agent.teams))


def _record(
    session: Session,
    ticket: Ticket,
    agent: AgentView | None,
    choice: Choice,
    *,
    settings: Settings,
    at: datetime,
) -> None:
    """Record the choice in the history. The assignee's notice goes with the new
    ticket's event (``opening``), so it is decided with the acknowledgement."""
    if agent is None:
        # Visible as such: no assignee, and the history says why.
        history(session, ticket, at, "assignment", "unassigned", detail={"reason": choice.reason})
        return
    ticket.assignee_id = agent.id
    history(
        session,
        ticket,
        at,
        "assignment",
        "assigned",
        field="assignee",
        new=agent.email,
        detail={"reason": choice.reason},
    )
