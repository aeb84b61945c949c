"""One inbound message becomes one ticket change, in one transaction.

Idempotent: a message already processed (or being processed twice at once) ends
in exactly one outcome, enforced by unique constraints, not only by this code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailgate import outbox, replytext
from mailgate import tickets as status_machine
from mailgate.directory import CustomerView, is_support_address, match_customer
from mailgate.errors import TemporaryFailure
from mailgate.intake_policy import admits
from mailgate.loop import loop_marker
from mailgate.message import ParsedMessage, ParseRefused, parse
from mailgate.models import (
    Customer,
    HistoryEvent,
    InboundMessage,
    MessageIdEntry,
    Notice,
    Participant,
    StoredAttachment,
    Team,
    Ticket,
    TicketLink,
    TicketMessage,
)
from mailgate.notices import CUSTOMER_REPLY, MESSAGE_TO_CLOSED, NEW_TICKET, Event
from mailgate.refusal import record_refusal
from mailgate.routing import route_new_ticket
from mailgate.screening import BOUNCE, ScreenContext, Screening, screen
from mailgate.settings import Settings
from mailgate.store import Store
from mailgate.threading.resolver import Resolution, ThreadClues, TicketRef, resolve

log = logging.getLogger(__name__)
# "failed" is final until an operator retries it (`mailgate inbound retry` resets it).
FINAL_STATES = ("processed", "quarantined", "failed")


@dataclass(frozen=True)
class ProcessResult:
    inbound_id: int
    state: str
    outcome: str
    ticket_number: int | None = None
    error: str = ""
    # Notices this message caused that are waiting to be sent (the embedded queue
    # sends them right after the commit).
    notice_ids: tuple[int, ...] = ()


class _DbLookup:
    """``ThreadLookup`` over a session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def ticket_for_message_ids(self, message_ids: tuple[str, ...]) -> int | None:
        rows = self.session.execute(
            select(MessageIdEntry.message_id, MessageIdEntry.ticket_id).where(
                MessageIdEntry.message_id.in_(message_ids)
            )
        ).all()
        found = {mid: tid for mid, tid in rows}
        # Most specific first: In-Reply-To, then References from newest to oldest.
        return next((found[mid] for mid in message_ids if mid in found), None)

    def ticket_by_number(self, number: int) -> TicketRef | None:
        ticket = self.session.scalar(select(Ticket).where(Ticket.number == number))
        if ticket is None:
            return None
        emails = frozenset(p.email for p in ticket.participants) | {ticket.requester}
        return TicketRef(ticket.id, number, emails)

    def number_of(self, ticket_id: int) -> int | None:
        return self.session.scalar(select(Ticket.number).where(Ticket.id == ticket_id))


def process(
    store: Store, inbound_id: int, *, settings: Settings, now: Callable[[], datetime]
) -> ProcessResult:
    """Turn inbound message ``inbound_id`` into a new ticket or a reply; safe to repeat."""
    with store.transaction() as session:
        row = session.get(InboundMessage, inbound_id)
        if row is None:
            raise LookupError(f"inbound message {inbound_id} does not exist")
        if row.state in FINAL_STATES:
            return _result_of(session, row)
        raw = row.raw
    try:
        parsed = parse(raw, settings.limits)
    except ParseRefused as exc:
        return _quarantine(store, inbound_id, str(exc), now)
    try:
        with store.transaction() as session:
            row = session.get(InboundMessage, inbound_id, with_for_update=True)
            assert row is not None
            if row.state in FINAL_STATES:
                return _result_of(session, row)
            _apply(session, row, parsed, settings=settings, now=now)
            session.flush()
            result = _result_of(session, row)
        log.info(
            "inbound processed",
            extra={
                "inbound_id": inbound_id,
                "outcome": result.outcome,
                "ticket": result.ticket_number,
            },
        )
        return result
    except IntegrityError as exc:
        # A concurrent worker recorded this message first; its outcome stands.
        with store.transaction() as session:
            row = session.get(InboundMessage, inbound_id)
            assert row is not None
            if row.state in FINAL_STATES:
                return _result_of(session, row)
        # Not a race: a real failure, counted like any other (invariant 8).
        _record_failure(store, inbound_id, exc, settings.queue.max_attempts)
        raise
    except TemporaryFailure:
        raise
    except Exception as exc:
        _record_failure(store, inbound_id, exc, settings.queue.max_attempts)
        raise


def _result_of(session: Session, row: InboundMessage) -> ProcessResult:
    number = None
    if row.ticket_id is not None:
        number = session.scalar(select(Ticket.number).where(Ticket.id == row.ticket_id))
    pending = session.scalars(
        select(Notice.id)
        .where(Notice.cause.startswith(f"{_cause(row.id)}:"), Notice.state == outbox.PENDING)
        .order_by(Notice.id)
    )
    return ProcessResult(row.id, row.state, row.outcome, number, row.last_error, tuple(pending))


def _cause(inbound_id: int) -> str:
    """What the notices of one inbound message are caused by (unique per message)."""
    return f"inbound:{inbound_id}"


def _quarantine(
    store: Store, inbound_id: int, reason: str, now: Callable[[], datetime]
) -> ProcessResult:
    with store.transaction() as session:
        row = session.get(InboundMessage, inbound_id)
        assert row is not None
        row.state, row.outcome, row.last_error = "quarantined", "refused", reason
        row.processed_at = now()
        return ProcessResult(inbound_id, row.state, row.outcome, None, reason)


def _record_failure(store: Store, inbound_id: int, exc: Exception, max_attempts: int) -> None:
    """Invariant 8: count the failure; after ``max_attempts`` the row is marked failed."""
    with store.transaction() as session:
        row = session.get(InboundMessage, inbound_id)
        if row is None:
            return
        row.attempts += 1
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if row.attempts >= max_attempts:
            row.state = "failed"
    log.warning("inbound %s failed processing: %s", inbound_id, type(exc).__name__)


def _apply(
    session: Session,
    row: InboundMessage,
    parsed: ParsedMessage,
    *,
    settings: Settings,
    now: Callable[[], datetime],
) -> None:
    at = now()
    row.defects = list(parsed.defects)
    seen = None
    if parsed.message_id:
        seen = session.scalar(
            select(MessageIdEntry).where(MessageIdEntry.message_id == parsed.message_id)
        )
        if seen is not None and _same_message(session, seen, parsed):
            # Invariant 2: the same message by another route (MTA retry, second mailbox).
            _finish(row, "duplicate", seen.ticket_id, at)
            return
    screening = _screen(row, parsed, settings)
    resolution = resolve(
        parsed,
        _DbLookup(session),
        tag_prefix=settings.tickets.subject_tag_prefix,
        secrets=(settings.security.secret, *settings.security.old_secrets),
        clues=ThreadClues(
            envelope_to=tuple(str(a) for a in row.envelope_to),
            reported_ids=screening.reported_ids,
            dmarc_failed=screening.dmarc_failed,
        ),
    )
    sender = parsed.sender.email.lower() if parsed.sender else row.envelope_from.lower()
    if resolution.ticket_id is None:
        if _refused_by_policy(
            session, row, parsed, sender, screening=screening, settings=settings, at=at
        ):
            return
        ticket = _open_ticket(
            session, parsed, sender, resolution, settings=settings, at=at, row=row
        )
        outcome, event_kind = "new_ticket", NEW_TICKET
        if screening.automatic:
            # Automatic mail that matches no ticket still becomes one, visible to agents
            # and tagged, but it is never acknowledged (README "Screening").
            ticket.tags = [*ticket.tags, screening.category]
    else:
        ticket = session.get_one(Ticket, resolution.ticket_id)
        outcome = _reply(session, ticket, sender, settings=settings, at=at, screening=screening)
        event_kind = MESSAGE_TO_CLOSED if outcome == "closed_ticket" else CUSTOMER_REPLY
    message = _add_message(
        session=session,
        ticket=ticket,
        row=row,
        parsed=parsed,
        sender=sender,
        resolution=resolution,
        at=at,
    )
    message.after_close = outcome == "closed_ticket"
    message.screening = screening.as_json()
    message.body_reply = replytext.new_text(parsed.text)
    if screening.category == BOUNCE:
        bounced = outbox.mark_bounced(session, screening.reported_ids, screening.reason)
        if bounced:
            message.screening = {**message.screening, "bounced_notices": bounced}
    assert ticket.number is not None
    event = Event(
        kind=event_kind,
        cause=_cause(row.id),
        ticket_number=ticket.number,
        requester=ticket.requester,
        sender=sender,
        assignee=outbox.assignee_email(session, ticket),
        in_reply_to=parsed.message_id,
        status=ticket.status,
    )
    outbox.notify(session, event, ticket, settings=settings, now=at, screening=screening)
    if parsed.message_id and seen is None:
        session.add(
            MessageIdEntry(
                message_id=parsed.message_id,
                ticket_id=ticket.id,
                ticket_message_id=message.id,
                direction="inbound",
            )
        )
    _finish(row, outcome, ticket.id, at)


def _same_message(session: Session, seen: MessageIdEntry, parsed: ParsedMessage) -> bool:
    """A known Message-ID is a duplicate only with the same body: some mailers reuse
    one Message-ID for different messages, and those must not be dropped."""
    if seen.direction != "inbound" or seen.ticket_message_id is None:
        return False
    earlier = session.get(TicketMessage, seen.ticket_message_id)
    return earlier is not None and earlier.content_sha256 == parsed.content_sha256


def _screen(row: InboundMessage, parsed: ParsedMessage, settings: Settings) -> Screening:
    # An empty envelope sender means "not told" (e.g. `mailgate ingest` without --sender);
    # a receiver that saw MAIL FROM:<> stores "<>".
    envelope = row.envelope_from.strip() or None
    ctx = ScreenContext(
        loop_marker=loop_marker(settings.outbound.from_address),
        trusted_authserv_ids=settings.security.trusted_authserv_ids,
        envelope_from=envelope,
    )
    return screen(parsed, ctx, raw=row.raw)


def _finish(row: InboundMessage, outcome: str, ticket_id: int | None, at: datetime) -> None:
    row.state, row.outcome, row.ticket_id, row.processed_at = "processed", outcome, ticket_id, at
    row.attempts += 1
    row.last_error = ""


def _customers(session: Session) -> list[CustomerView]:
    return [
        CustomerView(
            c.id,
            c.name,
            tuple(c.domains),
            tuple(c.addresses),
            tuple(c.admins),
            c.owner_id,
            c.language,
        )
        for c in session.scalars(select(Customer))
    ]


def _refused_by_policy(
    session: Session,
    row: InboundMessage,
    parsed: ParsedMessage,
    sender: str,
    *,
    screening: Screening,
    settings: Settings,
    at: datetime,
) -> bool:
    """intake.policy: a sender who may not open tickets gets a kept message, outcome
    ``refused_policy``, and one content-free answer. ``mailgate inbound accept``
    sets ``accepted_by`` and the message opens its ticket after all."""
    if settings.intake.policy == "anyone" or row.accepted_by:
        return False
    customer = match_customer(sender, _customers(session))
    verdict = admits(settings.intake.policy, sender, customer)
    if verdict.allowed:
        return False
    record_refusal(
        session,
        row=row,
        parsed=parsed,
        sender=sender,
        customer=customer,
        screening=screening,
        settings=settings,
        at=at,
    )
    _finish(row, "refused_policy", None, at)
    row.last_error = verdict.reason
    return True


def _open_ticket(
    session: Session,
    parsed: ParsedMessage,
    sender: str,
    resolution: Resolution,
    *,
    settings: Settings,
    at: datetime,
    row: InboundMessage,
) -> Ticket:
    customer = match_customer(sender, _customers(session))
    team_id = session.scalar(select(Team.id).where(Team.name == settings.defaults.team))
    ticket = Ticket(
        customer_id=customer.id if customer else None,
        requester=sender,
        requester_name=parsed.sender.name if parsed.sender else "",
        subject=parsed.subject,
        type=settings.defaults.type,
        priority=settings.defaults.priority,
        status=status_machine.new_ticket_status(settings.tickets),
        team_id=team_id,
        language=(customer.language if customer and customer.language else "")
        or parsed.language
        or settings.defaults.language,
        tags=[],
        created_at=at,
        updated_at=at,
    )
    session.add(ticket)
    session.flush()
    ticket.number = ticket.id
    people = {sender: "requester"}
    for addr in parsed.cc + parsed.to:
        email = addr.email.lower()
        if not is_support_address(email, settings.smtp.addresses):
            people.setdefault(email, "cc")
    for email, role in people.items():
        session.add(Participant(ticket_id=ticket.id, email=email, role=role))
    _history(session, ticket, at, sender, "created", detail={"thread": resolution.reason})
    if resolution.linked_number is not None:
        other = session.scalar(select(Ticket.id).where(Ticket.number == resolution.linked_number))
        if other is not None:
            session.add(TicketLink(ticket_id=ticket.id, other_ticket_id=other, kind="referenced"))
            _history(
                session,
                ticket,
                at,
                "system",
                "linked",
                new=str(resolution.linked_number),
                detail={"reason": resolution.reason},
            )
    if row.accepted_by:
        _history(session, ticket, at, row.accepted_by, "accepted", detail={"policy": "override"})
    # Type, priority, team, tags by rule; then the assignee (DESIGN.md §5).
    route_new_ticket(
        session, ticket, inbound=row, parsed=parsed, customer=customer, settings=settings, at=at
    )
    return ticket


def _reply(
    session: Session,
    ticket: Ticket,
    sender: str,
    *,
    settings: Settings,
    at: datetime,
    screening: Screening | None = None,
) -> str:
    if status_machine.is_closed(ticket.status, settings.tickets):
        # Invariant 4: kept for the agents, the ticket itself untouched.
        _history(session, ticket, at, sender, "received_after_close")
        return "closed_ticket"
    if screening is not None and screening.automatic:
        # An auto-reply or bounce belongs in the ticket's record, but it is not the
        # customer speaking: no status change, and the robot does not join the ticket.
        _history(
            session, ticket, at, sender, "automatic_received", detail={"reason": screening.reason}
        )
        return "automatic"
    change = status_machine.after_customer_reply(ticket.status, settings.tickets)
    if change is not None:
        ticket.status = change.new
        _history(
            session, ticket, at, sender, "status", field="status", old=change.old, new=change.new
        )
    ticket.updated_at = at
    existing = {p.email for p in ticket.participants} | {ticket.requester}
    if sender and sender not in existing:
        session.add(Participant(ticket_id=ticket.id, email=sender, role="cc"))
    _history(session, ticket, at, sender, "customer_reply")
    return "reply"


def _add_message(
    *,
    session: Session,
    ticket: Ticket,
    row: InboundMessage,
    parsed: ParsedMessage,
    sender: str,
    resolution: Resolution,
    at: datetime,
) -> TicketMessage:
    message = TicketMessage(
        ticket_id=ticket.id,
        inbound_id=row.id,
        direction="inbound",
        author_email=sender,
        author_name=parsed.sender.name if parsed.sender else "",
        to=[str(a) for a in parsed.to],
        cc=[str(a) for a in parsed.cc],
        subject=parsed.subject,
        body_text=parsed.text,
        body_html=parsed.html,
        message_id=parsed.message_id,
        content_sha256=parsed.content_sha256,
        in_reply_to=list(parsed.in_reply_to),
        references=list(parsed.references),
        thread_method=resolution.method,
        screening={},
        created_at=at,
    )
    session.add(message)
    session.flush()
    for attachment in parsed.attachments:
        session.add(
            StoredAttachment(
                ticket_message_id=message.id,
                filename=attachment.filename,
                content_type=attachment.content_type[:255],
                size=attachment.size,
                sha256=attachment.sha256,
                content_id=attachment.content_id[:255],
                inline=attachment.inline,
                content=attachment.content,
                omitted=attachment.omitted,
            )
        )
    return message


def _history(
    session: Session,
    ticket: Ticket,
    at: datetime,
    actor: str,
    action: str,
    *,
    field: str = "",
    old: str = "",
    new: str = "",
    detail: dict[str, str] | None = None,
) -> None:
    session.add(
        HistoryEvent(
            ticket_id=ticket.id,
            at=at,
            actor=actor or "unknown",
            action=action,
            field=field,
            old=old,
            new=new,
            detail=detail or {},
        )
    )
