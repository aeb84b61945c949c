"""What the operator's commands read about mail itself: the outbox (``notices list``)
and the inbound ledger (``inbound list/show/raw``); and which notices are due to be sent,
as the sender and the worker both ask."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from mailgate.core.errors import NotFound
from mailgate.core.states import NoticeState
from mailgate.db.models import InboundMessage, Notice, Ticket
from mailgate.db.planner import rare


def notices_due_now(now: datetime) -> ColumnElement[bool]:
    """Pending notices whose next attempt time has come (or was never set)."""
    return rare(Notice.state == NoticeState.PENDING) & (  # db.planner
        Notice.next_attempt_at.is_(None) | (Notice.next_attempt_at <= now)
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def notice_summary(row: Notice, number: int | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "ticket": number,
        "kind": row.kind,
        # The chat channel or webhook (issue 24); "" for mail. Only a name: the URL is
        # in an environment variable, never in the database.
        "channel": row.channel,
        "recipient": row.recipient,
        "language": row.language,
        "state": row.state,
        "attempts": row.attempts,
        "created_at": _iso(row.created_at),
        "next_attempt_at": _iso(row.next_attempt_at),
        "sent_at": _iso(row.sent_at),
        "message_id": row.message_id,
        "last_error": row.last_error,
    }


def list_notices(
    session: Session, *, state: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Outbox rows newest first, optionally in one state; ``limit`` 0 means all. Notices
    about no ticket (an intake refusal, a sign-in link) are listed too, ``ticket`` None."""
    query = select(Notice, Ticket.number).outerjoin(Ticket, Ticket.id == Notice.ticket_id)
    query = query.order_by(Notice.id.desc())
    if state:
        query = query.where(Notice.state == state)
    if limit:
        query = query.limit(limit)
    return [notice_summary(row, number) for row, number in session.execute(query)]


def inbound_summary(row: InboundMessage) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source,
        "state": row.state,
        "outcome": row.outcome,
        "envelope_from": row.envelope_from,
        "envelope_to": list(row.envelope_to),
        "received_at": _iso(row.received_at),
        "processed_at": _iso(row.processed_at),
        "size": row.size,
        "sha256": row.sha256,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "ticket_id": row.ticket_id,
        "defects": list(row.defects),
        "next_attempt_at": _iso(row.next_attempt_at),
        "accepted_by": row.accepted_by,
    }


def list_inbound(
    session: Session, *, state: str | None = None, outcome: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Inbound messages newest first, with their ticket number; ``limit`` 0 means all."""
    query = select(InboundMessage).order_by(InboundMessage.id.desc())
    if state:
        query = query.where(InboundMessage.state == state)
    if outcome:
        query = query.where(InboundMessage.outcome == outcome)
    if limit:
        query = query.limit(limit)
    rows = list(session.scalars(query))
    ticket_ids = [r.ticket_id for r in rows if r.ticket_id is not None]
    numbers = dict(
        session.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_(ticket_ids))).all()
    )
    out = []
    for row in rows:
        item = inbound_summary(row)
        item["ticket"] = numbers.get(row.ticket_id) if row.ticket_id is not None else None
        out.append(item)
    return out


def show_inbound(session: Session, inbound_id: int) -> dict[str, Any]:
    """One inbound message: its summary, header section and the notices it caused."""
    row = session.get(InboundMessage, inbound_id)
    if row is None:
        raise NotFound(f"no inbound message {inbound_id}")
    out = inbound_summary(row)
    out["ticket"] = (
        session.scalar(select(Ticket.number).where(Ticket.id == row.ticket_id))
        if row.ticket_id is not None
        else None
    )
    head = row.raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    out["headers"] = head.decode("utf-8", "replace")
    notices = session.scalars(select(Notice).where(Notice.inbound_id == row.id).order_by(Notice.id))
    out["notices"] = [
        {
            "id": n.id,
            "kind": n.kind,
            "recipient": n.recipient,
            "state": n.state,
            "last_error": n.last_error,
        }
        for n in notices
    ]
    return out


def raw_inbound(session: Session, inbound_id: int) -> bytes:
    """The bytes of inbound message ``inbound_id`` exactly as they were received."""
    raw = session.scalar(select(InboundMessage.raw).where(InboundMessage.id == inbound_id))
    if raw is None:
        raise NotFound(f"no inbound message {inbound_id}")
    return raw
