"""The outbox: notices written as rows in the same transaction as the event that caused
them, so a notice exists if and only if its event committed.

``notify`` is for processing; ``agent_replied``, ``status_changed`` and ``assigned`` are
for the agent-side commands. Each row's Message-ID is minted once, here, so every
delivery attempt sends the same one, and it is indexed so replies find the ticket.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailgate import notices
from mailgate.models import Agent, Customer, MessageIdEntry, Notice, Ticket, TicketMessage
from mailgate.notices import Event, NoticeContext, NoticeSpec
from mailgate.screening import Screening
from mailgate.settings import Settings
from mailgate.threading.tokens import mint_message_id

PENDING = "pending"
SUPPRESSED = "suppressed"


def notify(
    session: Session,
    event: Event,
    ticket: Ticket,
    *,
    settings: Settings,
    now: datetime,
    screening: Screening | None = None,
) -> list[Notice]:
    """Decide the notices ``event`` produces and write them; returns the rows written."""
    people = {event.requester, event.sender, event.assignee} - {""}
    ctx = NoticeContext(
        now=now,
        automatic=screening.automatic if screening else False,
        answerable=screening.answerable if screening else True,
        screening_reason=screening.reason if screening else "",
        customer_language=_customer_language(session, ticket),
        ticket_language=ticket.language,
        default_language=settings.defaults.language,
        max_per_hour=settings.outbound.max_per_hour_per_address,
        recent=recent_notices(session, people, now=now),
        own_addresses=(*settings.smtp.addresses, settings.outbound.from_address),
    )
    return write(session, ticket, notices.decide(event, ctx), settings=settings, now=now)


def write(
    session: Session,
    ticket: Ticket,
    specs: Iterable[NoticeSpec],
    *,
    settings: Settings,
    now: datetime,
) -> list[Notice]:
    """Insert one row per spec not already written (``cause`` is unique: reprocessing an
    event writes nothing twice) and index its Message-ID as outbound."""
    domain = settings.outbound.from_address.rpartition("@")[2] or "localhost"
    rows: list[Notice] = []
    for spec in specs:
        if session.scalar(select(Notice.id).where(Notice.cause == spec.cause)) is not None:
            continue
        assert ticket.number is not None
        row = Notice(
            ticket_id=ticket.id,
            kind=spec.kind,
            recipient=spec.recipient,
            language=spec.language,
            state=SUPPRESSED if spec.suppressed else PENDING,
            cause=spec.cause,
            message_id=mint_message_id(ticket.number, settings.security.secret, domain),
            in_reply_to=spec.in_reply_to,
            created_at=now,
            next_attempt_at=None if spec.suppressed else now,
            last_error=spec.suppressed,
            detail=_detail(spec),
        )
        session.add(row)
        session.flush()
        session.add(
            MessageIdEntry(
                message_id=row.message_id,
                ticket_id=ticket.id,
                notice_id=row.id,
                direction="outbound",
            )
        )
        rows.append(row)
    return rows


def _detail(spec: NoticeSpec) -> dict[str, str]:
    """The system vocabulary a template may show: a status, an SLA kind, a due time."""
    values = {"status": spec.status, "due": spec.due, "due_at": spec.due_at}
    return {key: value for key, value in values.items() if value}


def recent_notices(
    session: Session, addresses: Iterable[str], *, now: datetime
) -> dict[str, list[datetime]]:
    """When each address was last sent notices, over the rate-limit window; suppressed
    notices do not count (they were never sent)."""
    wanted = [a.lower() for a in addresses if a]
    if not wanted:
        return {}
    rows = session.execute(
        select(Notice.recipient, Notice.created_at).where(
            Notice.recipient.in_(wanted),
            Notice.state != SUPPRESSED,
            Notice.created_at > now - notices.RATE_WINDOW,
        )
    ).all()
    out: dict[str, list[datetime]] = {}
    for recipient, at in rows:
        out.setdefault(recipient, []).append(_aware(at, now))
    return out


def mark_bounced(session: Session, message_ids: Iterable[str], reason: str) -> list[int]:
    """Mark our notices a bounce reports on as ``bounced``; returns their ids."""
    ids = [m for m in message_ids if m]
    if not ids:
        return []
    found = list(session.scalars(select(Notice.id).where(Notice.message_id.in_(ids))))
    if found:
        session.execute(
            update(Notice)
            .where(Notice.id.in_(found))
            .values(state="bounced", last_error=reason[:2000], next_attempt_at=None)
        )
    return found


def agent_replied(
    session: Session,
    ticket: Ticket,
    *,
    settings: Settings,
    now: datetime,
    cause: str,
    status: str = "",
) -> list[Notice]:
    """The requester learns an agent replied (and the new status, if it changed).
    ``cause`` must be unique to the reply, e.g. ``agent_reply:<message id>``."""
    return _agent_event(
        session, ticket, notices.AGENT_REPLY, settings=settings, now=now, cause=cause, status=status
    )


def status_changed(
    session: Session, ticket: Ticket, *, settings: Settings, now: datetime, cause: str
) -> list[Notice]:
    """The requester learns the ticket's status changed (to ``ticket.status``)."""
    return _agent_event(
        session,
        ticket,
        notices.STATUS_CHANGE,
        settings=settings,
        now=now,
        cause=cause,
        status=ticket.status,
    )


def assigned(
    session: Session, ticket: Ticket, *, settings: Settings, now: datetime, cause: str
) -> list[Notice]:
    """The agent now assigned (``ticket.assignee_id``) learns the ticket is theirs."""
    return _agent_event(
        session, ticket, notices.ASSIGNMENT, settings=settings, now=now, cause=cause
    )


def _agent_event(
    session: Session,
    ticket: Ticket,
    kind: str,
    *,
    settings: Settings,
    now: datetime,
    cause: str,
    status: str = "",
) -> list[Notice]:
    assert ticket.number is not None
    event = Event(
        kind=kind,
        cause=cause,
        ticket_number=ticket.number,
        requester=ticket.requester,
        assignee=assignee_email(session, ticket),
        in_reply_to=_latest_customer_message_id(session, ticket),
        status=status,
    )
    return notify(session, event, ticket, settings=settings, now=now)


def assignee_email(session: Session, ticket: Ticket) -> str:
    if ticket.assignee_id is None:
        return ""
    agent = session.get(Agent, ticket.assignee_id)
    return agent.email if agent is not None and agent.active else ""


def _customer_language(session: Session, ticket: Ticket) -> str:
    if ticket.customer_id is None:
        return ""
    customer = session.get(Customer, ticket.customer_id)
    return customer.language if customer is not None else ""


def _latest_customer_message_id(session: Session, ticket: Ticket) -> str:
    value = session.scalar(
        select(TicketMessage.message_id)
        .where(
            TicketMessage.ticket_id == ticket.id,
            TicketMessage.direction == "inbound",
            TicketMessage.author_email == ticket.requester,
            TicketMessage.message_id != "",
        )
        .order_by(TicketMessage.id.desc())
        .limit(1)
    )
    return value or ""


def _aware(at: datetime, like: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were written in the clock's zone.
    return at if at.tzinfo is not None or like.tzinfo is None else at.replace(tzinfo=like.tzinfo)
