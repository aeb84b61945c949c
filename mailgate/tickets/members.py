"""What is attached to a ticket through a link table, by name: helpers (agents),
departments (teams), suppliers. One way to add, remove or replace them, with the
ticket's row lock taken by the caller, a closed ticket refusing a change, and one
history event per change; each kind says what its names are and what it refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailgate.core.errors import InvalidValue
from mailgate.core.settings import Settings
from mailgate.db import queries
from mailgate.db.models import Ticket
from mailgate.tickets.actors import Actor
from mailgate.tickets.records import history, lock_ticket, refuse_if_closed


@dataclass(frozen=True)
class MemberKind:
    """One kind of member: rows of ``model`` named by ``name`` (a column), linked to
    tickets by ``link`` rows whose ``link_column`` holds the member's id."""

    action: str  # the history event's action and field: "helpers"
    model: Any
    name: str
    link: Any
    link_column: str
    # The refusal of a name to remove that is not a member of ticket #number.
    not_there: Callable[[str, int], InvalidValue]
    normalize: Callable[[str], str] = str.strip
    # Refuses (raises) a new list of members; gets the ticket, the rows of the names
    # (found ones only) and the names there before.
    check: Callable[[Ticket, Sequence[str], Mapping[str, Any], Mapping[str, int]], None] = (
        lambda ticket, names, rows, current: None
    )
    # A column of Ticket counting them, so that paths that only need to know whether
    # there are any (a customer's reply) spend no statement on the many without.
    count: str = ""


def set_members(
    session: Session,
    kind: MemberKind,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    at: datetime,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    exactly: Sequence[str] | None = None,
) -> Ticket:
    """``change`` on ticket ``number``, locked first, keeping ``kind.count`` true."""
    ticket = lock_ticket(session, number=number)
    new = change(
        session, kind, ticket, settings=settings, actor=actor, at=at,
        add=add, remove=remove, exactly=exactly,
    )  # fmt: skip
    if new is not None and kind.count:
        setattr(ticket, kind.count, len(new))
    return ticket


def current(session: Session, kind: MemberKind, ticket_id: int) -> dict[str, int]:
    """The members of a ticket: name -> id, sorted by name."""
    return queries.linked_names(
        session, ticket_id, getattr(kind.model, kind.name), getattr(kind.link, kind.link_column)
    )


def change(
    session: Session,
    kind: MemberKind,
    ticket: Ticket,
    *,
    settings: Settings,
    actor: Actor,
    at: datetime,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    exactly: Sequence[str] | None = None,
) -> list[str] | None:
    """Add and remove members of ``ticket`` (locked by the caller) by name, or replace
    them all (``exactly``); the new names, or None when nothing changed (allowed on a
    closed ticket too). Removing one that is not there is refused, so a typo does not
    pass unnoticed."""
    assert ticket.number is not None
    before = current(session, kind, ticket.id)
    wanted = [kind.normalize(n) for n in (exactly if exactly is not None else add)]
    dropped = [kind.normalize(n) for n in remove]
    missing = [n for n in dropped if n not in before]
    if missing:
        raise kind.not_there(missing[0], ticket.number)
    base = [] if exactly is not None else list(before)
    new = [n for n in dict.fromkeys([*base, *wanted]) if n not in dropped]
    if set(new) == set(before):
        return None
    refuse_if_closed(ticket, settings)
    name = getattr(kind.model, kind.name)
    rows = {
        getattr(r, kind.name): r for r in session.scalars(select(kind.model).where(name.in_(new)))
    }
    kind.check(ticket, new, rows, before)
    gone = [before[n] for n in before if n not in new]
    link = getattr(kind.link, kind.link_column)
    if gone:
        session.execute(delete(kind.link).where(kind.link.ticket_id == ticket.id, link.in_(gone)))
    session.add_all(
        kind.link(ticket_id=ticket.id, **{kind.link_column: rows[n].id})
        for n in new
        if n not in before
    )
    ticket.updated_at = at
    history(
        session,
        ticket,
        at,
        actor.label,
        kind.action,
        field=kind.action,
        old=",".join(before),  # sorted, as current() reads them
        new=",".join(sorted(new)),
    )
    return new
