"""Canned responses in the database: add, list, show, remove, and reply with one.

The text rules live in ``response_text``; a reply with a response is an ordinary
``messages.agent_reply`` with the filled-in text, so history and notices are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core.attachments import Attachment
from mailgate.core.errors import InvalidValue, NotFound
from mailgate.core.settings import Settings
from mailgate.db.models import CannedResponse, Ticket, TicketMessage
from mailgate.tickets import canned_text as response_text
from mailgate.tickets.actors import Actor
from mailgate.tickets.messages import agent_reply
from mailgate.tickets.records import lock_ticket


def _row(r: CannedResponse) -> dict[str, Any]:
    return {
        "name": r.name,
        "body": r.body,
        "placeholders": sorted(set(response_text.placeholders(r.body))),
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
        "created_by": r.created_by,
    }


def get(session: Session, name: str) -> CannedResponse:
    row = session.scalar(select(CannedResponse).where(CannedResponse.name == name))
    if row is None:
        raise NotFound(f"no canned response {name!r} (see `mailgate responses list`)")
    return row


def add(
    session: Session, name: str, body: str, *, by: str, at: datetime, replace: bool = False
) -> tuple[CannedResponse, bool]:
    """Store a response; the row and whether it replaced one of the same name.

    An existing name is refused unless ``replace``: two agents must not overwrite each
    other's text by accident."""
    response_text.check_name(name)
    text = response_text.check_body(body)
    row = session.scalar(select(CannedResponse).where(CannedResponse.name == name))
    if row is not None:
        if not replace:
            raise InvalidValue(
                "a canned response %(name)r exists; use --replace to change it", name=name
            )
        row.body, row.updated_at = text, at
        return row, True
    row = CannedResponse(name=name, body=text, created_at=at, updated_at=at, created_by=by)
    session.add(row)
    session.flush()
    return row, False


def list_all(session: Session, *, limit: int = 0) -> list[dict[str, Any]]:
    """Responses, newest (last changed) first, like every listing; ``limit`` 0 for all."""
    query = select(CannedResponse).order_by(
        CannedResponse.updated_at.desc(), CannedResponse.id.desc()
    )
    if limit:
        query = query.limit(limit)
    return [_row(r) for r in session.scalars(query)]


def show(session: Session, name: str) -> dict[str, Any]:
    return _row(get(session, name))


def remove(session: Session, name: str) -> None:
    session.delete(get(session, name))


def names(session: Session) -> list[str]:
    """Every response's name, alphabetically: what an agent picks from."""
    return list(session.scalars(select(CannedResponse.name).order_by(CannedResponse.name)))


def fill(session: Session, name: str, *, ticket: Ticket, actor: Actor) -> str:
    """Response ``name`` filled in for ``ticket`` answered by ``actor``."""
    body = get(session, name).body
    used = set(response_text.placeholders(body))
    if used & {"agent_name", "agent_email"} and actor.agent_id is None:
        raise InvalidValue(
            "canned response %(name)r names the agent; reply as one (--as AGENT), not as %(actor)r",
            name=name,
            actor=actor.label,
        )
    values = {
        # A requester without a display name is greeted by address rather than by nothing.
        "requester_name": ticket.requester_name or ticket.requester,
        "requester_email": ticket.requester,
        "agent_name": actor.name or actor.email,
        "agent_email": actor.email,
    }
    fields = {
        "number": str(ticket.number),
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "type": ticket.type,
    }
    return response_text.render(body, values, fields)


def reply(
    session: Session,
    *,
    settings: Settings,
    number: int,
    actor: Actor,
    name: str,
    at: datetime,
    via: str = "portal",
    status: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> TicketMessage:
    """An agent reply whose text is canned response ``name``, filled in for the ticket
    (with ``status``: the status it moves to in the same step; ``attachments``: files
    sent with it)."""
    ticket = lock_ticket(session, number=number)
    body = fill(session, name, ticket=ticket, actor=actor)
    return agent_reply(
        session,
        ticket,
        settings=settings,
        actor=actor,
        body=body,
        at=at,
        via=via,
        response=name,
        status=status,
        attachments=attachments,
    )
