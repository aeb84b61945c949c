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
from mailgate.directory import match_customer
from mailgate.errors import TemporaryFailure
from mailgate.inbound_tickets import (
    ThreadIndex,
    add_inbound_message,
    customer_reply,
    open_ticket,
)
from mailgate.intake_policy import admits
from mailgate.loop import loop_marker
from mailgate.message import ParsedMessage, ParseRefused, parse
from mailgate.models import (
    InboundMessage,
    MessageIdEntry,
    Notice,
    Ticket,
    TicketMessage,
)
from mailgate.notices import CUSTOMER_REPLY, MESSAGE_TO_CLOSED, NEW_TICKET, Event
from mailgate.refusal import record_refusal
from mailgate.screening import BOUNCE, ScreenContext, Screening, screen
from mailgate.settings import Settings
from mailgate.store import Store, lock_row
from mailgate.threading.resolver import ThreadClues, resolve
from mailgate.ticket_records import customer_views

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
            # Two processes may take the same row (`mailgate run`'s receiver processes
            # inline while its worker polls): the second waits and sees the outcome.
            row = lock_row(session, InboundMessage, inbound_id, touch=InboundMessage.attempts)
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
        ThreadIndex(session),
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
        ticket = open_ticket(session, parsed, sender, resolution, settings=settings, at=at, row=row)
        outcome, event_kind = "new_ticket", NEW_TICKET
        if screening.automatic:
            # Automatic mail that matches no ticket still becomes one, visible to agents
            # and tagged, but it is never acknowledged (README "Screening").
            ticket.tags = [*ticket.tags, screening.category]
    else:
        ticket = session.get_one(Ticket, resolution.ticket_id)
        outcome = customer_reply(
            session, ticket, sender, settings=settings, at=at, screening=screening
        )
        event_kind = MESSAGE_TO_CLOSED if outcome == "closed_ticket" else CUSTOMER_REPLY
    message = add_inbound_message(
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
    customer = match_customer(sender, customer_views(session))
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
