"""``mailgate stats``: open tickets by status, type, priority and assignee; first-response
and resolution times (median and p90), refused mail and SLA breaches over a period."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from mailgate.core import sla
from mailgate.core.errors import InvalidValue
from mailgate.core.settings import Settings
from mailgate.db import queries, reports
from mailgate.db import rejection_counts as rejections
from mailgate.db.models import Agent, Customer, SlaEvent, Team, Ticket
from mailgate.db.names import by_name, id_of

UNASSIGNED = "unassigned"
# A condition on Ticket narrowing every figure (a team's, a customer account's).
Scope = ColumnElement[bool]


def p90(values: list[float]) -> float:
    """The 90th percentile by nearest rank (an actual observed value)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, Any]:
    """``count``, ``median_seconds`` and ``p90_seconds`` (None when there is nothing to measure)."""
    if not values:
        return {"count": 0, "median_seconds": None, "p90_seconds": None}
    return {
        "count": len(values),
        "median_seconds": float(statistics.median(values)),
        "p90_seconds": float(p90(values)),
    }


def _missed(targets: Mapping[str, int], now: datetime) -> ColumnElement[bool]:
    """A ticket whose target (minutes from creation, per priority) fell due by ``now``:
    ``sla.target_times`` as a condition, created_at + target <= now."""
    return or_(
        false(),
        *(
            and_(Ticket.priority == priority, Ticket.created_at <= now - timedelta(minutes=m))
            for priority, m in targets.items()
            if m  # no target, as in sla.target_times
        ),
    )


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def compute(
    session: Session,
    *,
    settings: Settings,
    now: datetime,
    since_days: int,
    team: str | None = None,
    customer: str | None = None,
) -> dict[str, Any]:
    """The statistics as of ``now``. Times cover tickets whose first response (or
    closing) happened in the last ``since_days`` days; open counts are as of now.
    ``team`` and ``customer`` (names) narrow every figure to that team's or customer
    account's tickets; an unknown name is ``InvalidValue``.

    Nothing here grows with the number of tickets (issue 23): the open tickets are
    counted by the database, group by group, read from ix_tickets_status_id for the
    statuses that are open; the times are read for the period only, through the indexes
    on first_response_at and closed_at."""
    since = now - timedelta(days=since_days)
    scope = _scope(session, team, Team.name, Ticket.team_id) + _scope(
        session, customer, Customer.name, Ticket.customer_id
    )
    by: dict[str, Counter[str]] = {k: Counter() for k in ("status", "type", "priority")}
    # By id, named once counted: only the agents, accounts and teams with open tickets.
    by_id: dict[str, Counter[int | None]] = {k: Counter() for k in ("assignee", "customer", "team")}
    targets = sla.Targets.from_settings(settings.sla)
    # The targets each open ticket is missing now (sla.in_breach): a first response is
    # only missed while there is none; the ticket is open, so the resolution is missing.
    first_missed = and_(Ticket.first_response_at.is_(None), _missed(targets.first_response, now))
    resolution_missed = _missed(targets.resolution, now)
    in_breach: Counter[str] = Counter()
    groups = session.execute(
        select(
            Ticket.status,
            Ticket.type,
            Ticket.priority,
            Ticket.assignee_id,
            Ticket.customer_id,
            Ticket.team_id,
            func.count(),
            _count(first_missed),
            _count(resolution_missed),
            _count(or_(first_missed, resolution_missed)),
        )
        .where(Ticket.status.in_(queries.open_statuses(session, settings.tickets)), *scope)
        .group_by(
            Ticket.status,
            Ticket.type,
            Ticket.priority,
            Ticket.assignee_id,
            Ticket.customer_id,
            Ticket.team_id,
        )
    )
    for row in groups:
        status, type_, priority, assignee_id, customer_id, team_id = row[:6]
        n, first, resolution, missing = row[6:]
        by["status"][status] += n
        by["type"][type_] += n
        by["priority"][priority] += n
        by_id["assignee"][assignee_id] += n
        by_id["customer"][customer_id] += n
        by_id["team"][team_id] += n
        in_breach.update({sla.FIRST_RESPONSE: first, sla.RESOLUTION: resolution, "total": missing})
    by["assignee"] = by_name(session, Agent.email, by_id["assignee"], UNASSIGNED)
    by["customer"] = by_name(session, Customer.name, by_id["customer"], reports.NO_CUSTOMER)
    by["team"] = by_name(session, Team.name, by_id["team"], reports.NO_TEAM)
    first = [
        (responded - created).total_seconds()
        for created, responded in session.execute(
            select(Ticket.created_at, Ticket.first_response_at).where(
                Ticket.first_response_at.is_not(None),
                Ticket.first_response_at >= since,
                Ticket.first_response_at <= now,
                *scope,
            )
        )
        if responded is not None  # excluded by the query; the row type cannot say so
    ]
    resolved = [
        (closed - created).total_seconds()
        for created, closed in session.execute(
            select(Ticket.created_at, Ticket.closed_at).where(
                Ticket.closed_at.is_not(None),
                Ticket.closed_at >= since,
                Ticket.closed_at <= now,
                *scope,
            )
        )
        if closed is not None
    ]
    open_total = sum(by["status"].values())
    return {
        "since_days": since_days,
        "team": team,
        "customer": customer,
        "since": since.isoformat(),
        "until": now.isoformat(),
        "open": {
            "total": open_total,
            **{f"by_{key}": dict(sorted(counts.items())) for key, counts in by.items()},
        },
        **reports.period(
            session,
            since=since,
            until=now,
            open_now=open_total,
            scope=scope,
        ),
        "activities": reports.activities(session, since=since, until=now, scope=scope),
        "first_response": summary(first),
        "resolution": summary(resolved),
        # Mail refused before it was stored, counted per UTC day: whole days, from the
        # day ``since`` falls on.
        "rejected": rejections.summary(session, since.date()),
        "sla": {
            "breaches": breaches(session, since, now, scope),
            "open_in_breach": {key: in_breach[key] for key in (*sla.BREACH_KINDS, "total")},
        },
    }


def breaches(
    session: Session, since: datetime, now: datetime, scope: Sequence[Scope] = ()
) -> dict[str, int]:
    """SLA breaches recorded between ``since`` and ``now``, by kind, and their total."""
    counts = dict.fromkeys(sla.BREACH_KINDS, 0)
    query = select(SlaEvent.kind, func.count()).where(
        SlaEvent.breached, SlaEvent.fired_at >= since, SlaEvent.fired_at <= now
    )
    if scope:
        query = query.join(Ticket, Ticket.id == SlaEvent.ticket_id).where(*scope)
    for kind, n in session.execute(query.group_by(SlaEvent.kind)):
        counts[kind] = n
    return {**counts, "total": sum(counts.values())}


def _scope(
    session: Session, value: str | None, name: InstrumentedAttribute[str], column: Any
) -> list[Scope]:
    """The condition keeping the tickets of the team or customer account named ``value``
    (``name``: ``Team.name`` or ``Customer.name``), none for None."""
    if value is None:
        return []
    found = id_of(session, name, value)
    if found is None:
        if name is Team.name:
            raise InvalidValue("no team %(team)r", team=value)
        raise InvalidValue("no customer account %(customer)r", customer=value)
    return [column == found]


# How a duration is written: minutes; hours and minutes; days and hours (%-formats with
# named values). The CLI's own; the Reports page passes them translated.
DURATION_WORDS = ("%(m)sm", "%(h)sh %(m)02dm", "%(d)sd %(h)sh")


def duration(seconds: float | None, words: tuple[str, str, str] = DURATION_WORDS) -> str:
    """A duration for people: ``-``, ``45m``, ``3h 05m``, ``2d 4h`` (in ``words``)."""
    if seconds is None:
        return "-"
    in_minutes, in_hours, in_days = words
    minutes = round(seconds / 60)
    if minutes < 60:
        return in_minutes % {"m": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return in_hours % {"h": hours, "m": minutes}
    days, hours = divmod(hours, 24)
    return in_days % {"d": days, "h": hours}
