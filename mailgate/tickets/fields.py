"""Changing a ticket's priority, type and tags, and several fields at once (issue 20):
one function per field, the same from the portal, the API (``PATCH``) and the CLI, with
the locking and history of ``changes``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailgate.core.errors import InvalidValue
from mailgate.core.settings import Settings
from mailgate.db.models import Ticket
from mailgate.tickets import involvement, suppliers, triggers
from mailgate.tickets.actors import Actor
from mailgate.tickets.changes import assign, change_status, set_team
from mailgate.tickets.records import history, lock_ticket, refuse_if_closed


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
        if field == "priority":
            raise InvalidValue(
                "unknown priority %(priority)r (known: %(known)s)",
                priority=value,
                known=", ".join(known),
            )
        raise InvalidValue(
            "unknown type %(type)r (known: %(known)s)", type=value, known=", ".join(known)
        )
    ticket = lock_ticket(session, number=number)
    old = getattr(ticket, field)
    if old == value:
        return ticket
    refuse_if_closed(ticket, settings)
    setattr(ticket, field, value)
    ticket.updated_at = at
    history(session, ticket, at, actor.label, field, field=field, old=old, new=value)
    triggers.fire(session, ticket, f"{field}_changed", settings=settings, actor=actor, at=at)
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
    triggers.fire(session, ticket, "tags_changed", settings=settings, actor=actor, at=at)
    return ticket


def _tag(text: str) -> str:
    tag = text.strip().lower()
    if not tag or len(tag) > MAX_TAG_CHARS or any(c.isspace() or c == "," for c in tag):
        raise InvalidValue(
            "a tag is one word of 1 to %(max)s characters, without commas: %(text)r",
            max=MAX_TAG_CHARS,
            text=text,
        )
    return tag


# The fields apply_fields changes, in the order it changes them: the status last, so a
# change that closes the ticket comes after the others instead of refusing them.
FIELDS = (
    "type", "priority", "team", "tags", "assignee", "helpers", "departments", "suppliers",
    "status",
)  # fmt: skip


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
        raise InvalidValue(
            "unknown field %(field)r (known: %(known)s)", field=unknown[0], known=", ".join(FIELDS)
        )
    ticket = lock_ticket(session, number=number)
    for name in (f for f in FIELDS if f in fields):
        setter, keyword = _SETTERS[name]
        value = fields[name]
        ticket = setter(
            session,
            settings=settings,
            number=number,
            actor=actor,
            at=at,
            **{keyword: list(value) if keyword == "exactly" else value},
        )
    return ticket


# Each field's function and the keyword its value goes in.
_SETTERS: dict[str, tuple[Callable[..., Ticket], str]] = {
    "type": (set_type, "type_"),
    "priority": (set_priority, "priority"),
    "team": (set_team, "team"),
    "tags": (set_tags, "exactly"),
    "assignee": (assign, "assignee"),
    "helpers": (involvement.set_helpers, "exactly"),
    "departments": (involvement.set_departments, "exactly"),
    "suppliers": (suppliers.set_suppliers, "exactly"),
    "status": (change_status, "status"),
}
