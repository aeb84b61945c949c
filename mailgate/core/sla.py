"""SLA targets and ticket dates: which due events a ticket has at a given moment. Pure.

A due event is (kind, due time). Two kinds are service-level targets, counted from
the ticket's creation in calendar time and recorded as breaches: ``first_response``
(no agent reply yet) and ``resolution`` (not closed yet). Two are dates an agent set:
``follow_up`` and ``action_required``. The edge (``sla_check.py``) stores each event
once, keyed by (ticket, kind, due time): moving a date or a ticket's priority gives a
new due time, so it fires again, which is what "once per due event" means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from mailgate.core.errors import InvalidValue
from mailgate.core.settings import SlaSettings

FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
FOLLOW_UP = "follow_up"
ACTION_REQUIRED = "action_required"
KINDS = (FIRST_RESPONSE, RESOLUTION, FOLLOW_UP, ACTION_REQUIRED)
BREACH_KINDS = (FIRST_RESPONSE, RESOLUTION)
# What the history says when an event fires.
SUMMARIES = {
    FIRST_RESPONSE: "SLA first response breached",
    RESOLUTION: "SLA resolution breached",
    FOLLOW_UP: "Follow-up date reached",
    ACTION_REQUIRED: "Action-required date reached",
}
_RELATIVE = re.compile(r"^(\d{1,6})\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class TicketClock:
    """What the check needs to know of one ticket."""

    priority: str
    created_at: datetime
    closed: bool
    first_response_at: datetime | None = None
    follow_up_at: datetime | None = None
    action_required_at: datetime | None = None


@dataclass(frozen=True)
class Targets:
    """Minutes from creation, per priority name; a priority not listed has no target."""

    first_response: Mapping[str, int] = field(default_factory=dict)
    resolution: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, sla: SlaSettings) -> Targets:
        return cls(dict(sla.first_response_minutes), dict(sla.resolution_minutes))


@dataclass(frozen=True)
class DueEvent:
    kind: str
    due_at: datetime

    @property
    def breached(self) -> bool:
        return self.kind in BREACH_KINDS

    @property
    def summary(self) -> str:
        return SUMMARIES[self.kind]


def target_times(ticket: TicketClock, targets: Targets) -> dict[str, datetime | None]:
    """When each target falls due (None: no target for this priority)."""
    out: dict[str, datetime | None] = {}
    for kind, table in ((FIRST_RESPONSE, targets.first_response), (RESOLUTION, targets.resolution)):
        minutes = table.get(ticket.priority)
        out[kind] = ticket.created_at + timedelta(minutes=minutes) if minutes else None
    return out


def due_events(ticket: TicketClock, targets: Targets, now: datetime) -> tuple[DueEvent, ...]:
    """Every event due for ``ticket`` at ``now``; a closed ticket has none."""
    if ticket.closed:
        return ()
    candidates: list[tuple[str, datetime | None]] = []
    times = target_times(ticket, targets)
    if ticket.first_response_at is None:
        candidates.append((FIRST_RESPONSE, times[FIRST_RESPONSE]))
    candidates.append((RESOLUTION, times[RESOLUTION]))
    candidates.append((FOLLOW_UP, ticket.follow_up_at))
    candidates.append((ACTION_REQUIRED, ticket.action_required_at))
    return tuple(DueEvent(kind, at) for kind, at in candidates if at is not None and at <= now)


def met_late(ticket: TicketClock, targets: Targets, kind: str, at: datetime) -> DueEvent | None:
    """The breach when target ``kind`` is met at ``at`` (the first reply, the closing)
    after it fell due; None when it was met in time or there is no target."""
    due = target_times(ticket, targets)[kind]
    return DueEvent(kind, due) if due is not None and due < at else None


def in_breach(ticket: TicketClock, targets: Targets, now: datetime) -> tuple[str, ...]:
    """The targets ``ticket`` is missing right now (for ``mailgate stats``)."""
    return tuple(e.kind for e in due_events(ticket, targets, now) if e.breached)


def parse_when(text: str, now: datetime) -> datetime | None:
    """A date an agent typed: ``none`` (clear it), a relative ``30m``/``4h``/``2d``/``1w``
    from ``now``, an ISO date (midnight UTC) or an ISO date and time (UTC unless it says
    otherwise). Whole seconds, in UTC. Raises ``InvalidValue`` naming what was expected."""
    value = text.strip()
    if value.lower() == "none":
        return None
    try:
        return _when(value, now)
    except OverflowError:
        # Past year 9999 (999999w, or 9999-12-31T23:00-05:00 in UTC), or before year 1.
        raise InvalidValue("%(when)r is outside the dates mailgate can store", when=text) from None


def _when(value: str, now: datetime) -> datetime:
    relative = _RELATIVE.match(value.lower())
    if relative:
        amount, unit = int(relative.group(1)), _UNITS[relative.group(2)]
        at = now + timedelta(**{unit: amount})
    else:
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                at = datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
            else:
                at = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidValue(
                "cannot read %(value)r as a date: expected none, 30m, 4h, 2d, 1w, "
                "2026-01-31 or 2026-01-31T14:00[+01:00]",
                value=value,
            ) from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).replace(microsecond=0)
