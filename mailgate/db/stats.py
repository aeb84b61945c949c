"""``mailgate stats``: open tickets by status, type, priority and assignee; first-response
and resolution times (median and p90), refused mail and SLA breaches over a period."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailgate.core import sla
from mailgate.core.settings import Settings
from mailgate.db import rejection_counts as rejections
from mailgate.db.models import Agent, SlaEvent, Ticket

UNASSIGNED = "unassigned"


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


def _is_open(status: str, settings: Settings) -> bool:
    try:
        return settings.tickets.category_of(status) != "closed"
    except KeyError:
        return True  # a status no longer configured: count it rather than hide it


def compute(
    session: Session, *, settings: Settings, now: datetime, since_days: int
) -> dict[str, Any]:
    """The statistics as of ``now``. Times cover tickets whose first response (or
    closing) happened in the last ``since_days`` days; open counts are as of now."""
    since = now - timedelta(days=since_days)
    agents = {a.id: a.email for a in session.scalars(select(Agent))}
    by: dict[str, Counter[str]] = {k: Counter() for k in ("status", "type", "priority", "assignee")}
    targets = sla.Targets.from_settings(settings.sla)
    in_breach: Counter[str] = Counter()
    rows = session.execute(
        select(
            Ticket.status,
            Ticket.type,
            Ticket.priority,
            Ticket.assignee_id,
            Ticket.created_at,
            Ticket.first_response_at,
        )
    )
    for status, type_, priority, assignee_id, created_at, first_response_at in rows:
        if not _is_open(status, settings):
            continue
        by["status"][status] += 1
        by["type"][type_] += 1
        by["priority"][priority] += 1
        by["assignee"][agents.get(assignee_id, UNASSIGNED) if assignee_id else UNASSIGNED] += 1
        clock = sla.TicketClock(priority, created_at, False, first_response_at)
        missed = sla.in_breach(clock, targets, now)
        in_breach.update(missed)
        in_breach["total"] += 1 if missed else 0
    first = [
        (responded - created).total_seconds()
        for created, responded in session.execute(
            select(Ticket.created_at, Ticket.first_response_at).where(
                Ticket.first_response_at.is_not(None),
                Ticket.first_response_at >= since,
                Ticket.first_response_at <= now,
            )
        )
    ]
    resolved = [
        (closed - created).total_seconds()
        for created, closed in session.execute(
            select(Ticket.created_at, Ticket.closed_at).where(
                Ticket.closed_at.is_not(None), Ticket.closed_at >= since, Ticket.closed_at <= now
            )
        )
    ]
    return {
        "since_days": since_days,
        "since": since.isoformat(),
        "until": now.isoformat(),
        "open": {
            "total": sum(by["status"].values()),
            **{f"by_{key}": dict(sorted(counts.items())) for key, counts in by.items()},
        },
        "first_response": summary(first),
        "resolution": summary(resolved),
        # Mail refused before it was stored, counted per UTC day: whole days, from the
        # day ``since`` falls on.
        "rejected": rejections.summary(session, since.date()),
        "sla": {
            "breaches": breaches(session, since, now),
            "open_in_breach": {key: in_breach[key] for key in (*sla.BREACH_KINDS, "total")},
        },
    }


def breaches(session: Session, since: datetime, now: datetime) -> dict[str, int]:
    """SLA breaches recorded between ``since`` and ``now``, by kind, and their total."""
    counts = dict.fromkeys(sla.BREACH_KINDS, 0)
    for kind, n in session.execute(
        select(SlaEvent.kind, func.count())
        .where(SlaEvent.breached, SlaEvent.fired_at >= since, SlaEvent.fired_at <= now)
        .group_by(SlaEvent.kind)
    ):
        counts[kind] = n
    return {**counts, "total": sum(counts.values())}


def duration(seconds: float | None) -> str:
    """A duration for people: ``-``, ``45m``, ``3h 05m``, ``2d 4h``."""
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"
