"""Activities: time agents spend on a ticket, by type (issue 22, item 5).

Logged like any other change: the ticket is locked, a closed ticket refuses (closing
is final), and the history says who logged what. The text is internal, like a note.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mailgate.core.errors import InvalidValue
from mailgate.core.settings import Settings
from mailgate.db.models import Activity
from mailgate.tickets.actors import Actor
from mailgate.tickets.records import history, lock_ticket, refuse_if_closed

# One entry is at most a week of work: a larger figure is a typing mistake.
MAX_MINUTES = 7 * 24 * 60
MAX_TEXT = 100_000


def log_activity(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    type_: str,
    minutes: int,
    text: str = "",
    at: datetime,
) -> Activity:
    """Record ``minutes`` of work of ``type_`` on ticket ``number``."""
    if type_ not in settings.tickets.activity_types:
        known = ", ".join(settings.tickets.activity_types)
        raise InvalidValue(
            "unknown activity type %(type)r (known: %(known)s)", type=type_, known=known
        )
    if not 1 <= minutes <= MAX_MINUTES:
        raise InvalidValue(
            "minutes must be from 1 to %(max)s, got %(minutes)s", max=MAX_MINUTES, minutes=minutes
        )
    if len(text) > MAX_TEXT or "\x00" in text:
        raise InvalidValue("the text must be at most %(max)s characters, without NUL", max=MAX_TEXT)
    ticket = lock_ticket(session, number=number)
    refuse_if_closed(ticket, settings)
    activity = Activity(
        ticket_id=ticket.id,
        agent_id=actor.agent_id,
        actor=actor.label,
        type=type_,
        minutes=minutes,
        text=text.strip(),
        created_at=at,
    )
    session.add(activity)
    ticket.updated_at = at
    history(
        session,
        ticket,
        at,
        actor.label,
        "activity",
        detail={"type": type_, "minutes": str(minutes)},
    )
    session.flush()
    return activity
