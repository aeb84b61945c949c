"""The period's reports beside ``stats.compute`` (issue 22, items 5 and 7): tickets
opened in the period by customer account, team, type and priority, a per-day series
(opened, closed, backlog at the end of the day, first-response median), and the time
agents logged, by type, agent, customer account and ticket.

Read for the period only, through the indexes on ``created_at``, ``closed_at`` and
``first_response_at``: like the rest of ``mailgate stats``, the cost follows the
period, not the number of tickets ever kept. Days are UTC days.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from mailgate.db.models import Activity, Customer, Team, Ticket
from mailgate.db.names import by_name

NO_CUSTOMER = "(no account)"
NO_TEAM = "(no team)"
# The per-day series covers at most the last year of a longer period.
MAX_DAYS = 366


def period(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    open_now: int,
    scope: Sequence[ColumnElement[bool]] = (),
) -> dict[str, Any]:
    """``opened`` (breakdowns of the tickets opened in the period) and ``daily`` (one
    entry per UTC day from ``since`` to ``until``, the last ``MAX_DAYS`` of them).
    ``open_now``: the open tickets at ``until``, from which each day's backlog is
    counted back."""
    by: dict[str, Counter[str]] = {k: Counter() for k in ("type", "priority")}
    customers: Counter[int | None] = Counter()
    teams: Counter[int | None] = Counter()
    opened: Counter[date] = Counter()
    for created, customer_id, team_id, type_, priority in session.execute(
        select(
            Ticket.created_at, Ticket.customer_id, Ticket.team_id, Ticket.type, Ticket.priority
        ).where(Ticket.created_at >= since, Ticket.created_at <= until, *scope)
    ):
        opened[created.date()] += 1
        customers[customer_id] += 1
        teams[team_id] += 1
        by["type"][type_] += 1
        by["priority"][priority] += 1
    by = {
        "customer": by_name(session, Customer.name, customers, NO_CUSTOMER),
        "team": by_name(session, Team.name, teams, NO_TEAM),
        **by,
    }
    closed = Counter(
        at.date()
        for at in session.scalars(
            select(Ticket.closed_at).where(
                Ticket.closed_at >= since, Ticket.closed_at <= until, *scope
            )
        )
        if at is not None  # the range excludes NULL; the type cannot say so
    )
    first: defaultdict[date, list[float]] = defaultdict(list)
    for created, responded in session.execute(
        select(Ticket.created_at, Ticket.first_response_at).where(
            Ticket.first_response_at >= since, Ticket.first_response_at <= until, *scope
        )
    ):
        if responded is not None:  # the query asks for answered tickets only
            first[responded.date()].append((responded - created).total_seconds())
    return {
        "opened": {
            "total": sum(opened.values()),
            **{f"by_{key}": dict(sorted(counts.items())) for key, counts in by.items()},
        },
        "daily": _daily(
            max(since.date(), until.date() - timedelta(days=MAX_DAYS - 1)),
            until.date(),
            opened=opened,
            closed=closed,
            first=first,
            open_now=open_now,
        ),
    }


def _daily(
    first_day: date,
    last_day: date,
    *,
    opened: Counter[date],
    closed: Counter[date],
    first: dict[date, list[float]],
    open_now: int,
) -> list[dict[str, Any]]:
    """Walked backwards from today: the backlog at the end of a day is the one at the
    end of the next day, less what that next day opened, plus what it closed (closing
    is final, so nothing reopens in between)."""
    rows: list[dict[str, Any]] = []
    backlog = open_now
    day = last_day
    while day >= first_day:
        times = first.get(day, [])
        rows.append(
            {
                "date": day.isoformat(),
                "opened": opened[day],
                "closed": closed[day],
                "backlog": backlog,
                "first_response_median_seconds": statistics.median(times) if times else None,
            }
        )
        backlog += closed[day] - opened[day]
        day -= timedelta(days=1)
    rows.reverse()
    return rows


# Tickets listed by time spent: the ones that took most.
TOP_TICKETS = 10


def activities(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    scope: Sequence[ColumnElement[bool]] = (),
) -> dict[str, Any]:
    """Minutes logged in the period (``tickets activity``), in all and by type, agent,
    customer account and ticket (the ``TOP_TICKETS`` that took most)."""
    by: dict[str, Counter[str]] = {k: Counter() for k in ("type", "agent")}
    customers: Counter[int | None] = Counter()
    tickets: Counter[int] = Counter()
    count = 0
    for type_, actor, minutes, number, customer_id in session.execute(
        select(Activity.type, Activity.actor, Activity.minutes, Ticket.number, Ticket.customer_id)
        .join(Ticket, Ticket.id == Activity.ticket_id)
        .where(Activity.created_at >= since, Activity.created_at <= until, *scope)
    ):
        count += 1
        by["type"][type_] += minutes
        by["agent"][actor] += minutes
        customers[customer_id] += minutes
        if number is not None:  # every ticket is numbered when it opens
            tickets[number] += minutes
    by["customer"] = by_name(session, Customer.name, customers, NO_CUSTOMER)
    return {
        "count": count,
        "total_minutes": sum(by["type"].values()),
        **{f"by_{key}": dict(sorted(counts.items())) for key, counts in by.items()},
        "by_ticket": {f"#{n}": m for n, m in tickets.most_common(TOP_TICKETS)},
    }


CSV_COLUMNS = ("date", "opened", "closed", "backlog", "first_response_median_seconds")
