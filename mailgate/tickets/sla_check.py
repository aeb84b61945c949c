"""One pass of the SLA check: find due events, store each once, record and remind;
then remind the assignees of overdue to-dos, once each (``tickets.todo_reminders``).

The worker runs it every ``sla.check_interval_seconds`` (``mailgate sla check`` runs
one by hand). Any number of passes may run at once, on any number of machines: an
event is inserted with ON CONFLICT DO NOTHING on (ticket, kind, due time), and only
the pass whose insert took writes the history entry and the reminder, in the same
transaction. A crash before the commit leaves nothing, so the next pass fires it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailgate.core import sla
from mailgate.core.notices import SLA_DUE
from mailgate.core.settings import Settings
from mailgate.core.states import NoticeState
from mailgate.db import queries
from mailgate.db.models import SlaEvent, Ticket
from mailgate.db.store import Store
from mailgate.tickets import triggers
from mailgate.tickets.notify import notify, tell_webhooks, ticket_event
from mailgate.tickets.records import history, lock_ticket
from mailgate.tickets.todo_reminders import Reminded, remind_overdue

log = logging.getLogger(__name__)
ACTOR = "sla"


@dataclass(frozen=True)
class Fired:
    number: int
    kind: str
    due_at: datetime
    notice_id: int | None  # None: unassigned, or the reminder was not written
    # The chat and webhook rows it wrote to send (issue 24), sent right away as well.
    channel_notice_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class CheckReport:
    fired: tuple[Fired, ...] = ()
    # Overdue to-dos whose assignee was reminded by this pass (tickets.todo_reminders).
    reminded: tuple[Reminded, ...] = ()

    @property
    def notice_ids(self) -> list[int]:
        ids = [f.notice_id for f in self.fired] + [r.notice_id for r in self.reminded]
        ids += [i for f in self.fired for i in f.channel_notice_ids]
        return [i for i in ids if i is not None]


def closed_statuses(settings: Settings) -> list[str]:
    return [s.name for s in settings.tickets.statuses if s.category == "closed"]


def clock_of(ticket: Ticket, settings: Settings) -> sla.TicketClock:
    return sla.TicketClock(
        priority=ticket.priority,
        created_at=ticket.created_at,
        closed=ticket.status in closed_statuses(settings),
        first_response_at=ticket.first_response_at,
        follow_up_at=ticket.follow_up_at,
        action_required_at=ticket.action_required_at,
    )


def _maybe_due(targets: sla.Targets, now: datetime) -> ColumnElement[bool]:
    """Tickets that may have a due event at ``now``: the pure core decides exactly.
    Portable SQL: each target compares created_at with a constant, no date arithmetic."""
    clauses: list[ColumnElement[bool]] = [
        Ticket.follow_up_at <= now,
        Ticket.action_required_at <= now,
    ]
    for priority, minutes in targets.first_response.items():
        clauses.append(
            and_(
                Ticket.priority == priority,
                Ticket.first_response_at.is_(None),
                Ticket.created_at <= now - timedelta(minutes=minutes),
            )
        )
    for priority, minutes in targets.resolution.items():
        clauses.append(
            and_(Ticket.priority == priority, Ticket.created_at <= now - timedelta(minutes=minutes))
        )
    return or_(false(), *clauses)


def pending(session: Session, settings: Settings, now: datetime) -> dict[int, int]:
    """Open tickets with at least one due event not stored yet: ``{ticket id: number}``."""
    targets = sla.Targets.from_settings(settings.sla)
    # The open statuses by name, so the pass reads the open tickets from the status index:
    # "NOT IN (closed)" read every ticket each minute (issue 23).
    open_now = queries.open_statuses(session, settings.tickets)
    tickets = list(
        session.scalars(select(Ticket).where(Ticket.status.in_(open_now), _maybe_due(targets, now)))
    )
    if not tickets:
        return {}
    stored = {
        (ticket_id, kind, due_at)
        for ticket_id, kind, due_at in session.execute(
            select(SlaEvent.ticket_id, SlaEvent.kind, SlaEvent.due_at).where(
                SlaEvent.ticket_id.in_([t.id for t in tickets])
            )
        )
    }
    out: dict[int, int] = {}
    for ticket in tickets:
        events = sla.due_events(clock_of(ticket, settings), targets, now)
        if any((ticket.id, e.kind, e.due_at) not in stored for e in events):
            assert ticket.number is not None
            out[ticket.id] = ticket.number
    return out


def _insert_once(session: Session, ticket_id: int, event: sla.DueEvent, now: datetime) -> bool:
    """Store ``event``; False when it is already stored (another pass fired it)."""
    values: dict[str, Any] = {
        "ticket_id": ticket_id,
        "kind": event.kind,
        "due_at": event.due_at,
        "fired_at": now,
        "breached": event.breached,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(SlaEvent).values(**values).on_conflict_do_nothing()
    # RETURNING rather than rowcount, which drivers report differently for a skipped row.
    inserted = session.scalar(statement.returning(SlaEvent.id))
    return inserted is not None


def record_met_late(
    session: Session, ticket: Ticket, settings: Settings, kind: str, at: datetime
) -> bool:
    """Target ``kind`` is being met at ``at`` (an agent's first reply, the closing): if
    that is after it fell due and no pass fired it yet (a reply between two passes),
    record the breach now, once, with its history entry and no reminder (nothing is
    left to do). True when it was recorded here."""
    if not settings.sla.enabled:
        return False
    event = sla.met_late(
        clock_of(ticket, settings), sla.Targets.from_settings(settings.sla), kind, at
    )
    if event is None or not _insert_once(session, ticket.id, event, at):
        return False
    due = event.due_at.isoformat()
    entry = history(
        session,
        ticket,
        at,
        ACTOR,
        "sla_breached",
        field=event.kind,
        new=due,
        detail={"summary": f"{event.summary} (met late)"},
        flush=bool(settings.webhooks),  # their rows are named after it
    )
    # No reminder, but a breach all the same for the webhooks that count them.
    cause = f"sla:{entry.id}"
    tell_webhooks(
        session, ticket, SLA_DUE, cause, settings=settings, now=at, due=event.kind, due_at=due
    )
    return True


def fire_ticket(session: Session, ticket_id: int, settings: Settings, now: datetime) -> list[Fired]:
    """Fire the due events of one ticket not fired yet, from its state as of now (locked:
    an agent's reply in between means no first-response reminder)."""
    ticket = lock_ticket(session, ticket_id=ticket_id)
    if ticket.number is None:
        return []
    targets = sla.Targets.from_settings(settings.sla)
    fired: list[Fired] = []
    breached = False
    for event in sla.due_events(clock_of(ticket, settings), targets, now):
        if not _insert_once(session, ticket.id, event, now):
            continue
        due = event.due_at.isoformat()
        entry = history(
            session,
            ticket,
            now,
            ACTOR,
            "sla_breached" if event.breached else "date_reached",
            field=event.kind,
            new=due,
            detail={"summary": event.summary},
            flush=True,  # the reminder is named after it
        )
        reminder = ticket_event(
            session, ticket, SLA_DUE, f"sla:{entry.id}", due=event.kind, due_at=due
        )
        notices = notify(session, reminder, ticket=ticket, settings=settings, now=now)
        sent = [n.id for n in notices if n.state == NoticeState.PENDING and not n.channel]
        others = tuple(n.id for n in notices if n.state == NoticeState.PENDING and n.channel)
        at = event.due_at
        fired.append(Fired(ticket.number, event.kind, at, sent[0] if sent else None, others))
        if event.breached:
            breached = True
    if breached:
        triggers.fire(session, ticket, "sla_breached", settings=settings, actor=None, at=now)
    return fired


def run_check(store: Store, settings: Settings, now: datetime) -> CheckReport:
    """One pass over every open ticket; one transaction per ticket that has something
    to fire, so a slow or failing ticket holds up no other."""
    with store.transaction() as session:
        due = pending(session, settings, now)
    fired: list[Fired] = []
    for ticket_id in sorted(due):
        with store.transaction() as session:
            fired.extend(fire_ticket(session, ticket_id, settings, now))
    if fired:
        log.info("sla: %d due event(s) fired on %d ticket(s)", len(fired), len(due))
    reminded = remind_overdue(store, settings, now)
    if reminded:
        log.info("sla: %d overdue to-do(s) reminded", len(reminded))
    return CheckReport(tuple(fired), tuple(reminded))
