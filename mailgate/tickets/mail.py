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

from mailgate.core import rules
from mailgate.core.directory import CustomerView
from mailgate.core.errors import TemporaryFailure
from mailgate.core.loop import loop_marker
from mailgate.core.message import ParsedMessage, ParseRefused
from mailgate.core.prepared import Prepared, prepare
from mailgate.core.screening import BOUNCE, ScreenContext, Screening, screen
from mailgate.core.settings import Settings
from mailgate.core.states import FINAL_INBOUND_STATES, InboundState, NoticeState, Outcome
from mailgate.db.models import InboundMessage, MessageIdEntry, Notice, Ticket, TicketMessage
from mailgate.db.store import Store, lock_row
from mailgate.db.thread_index import ThreadIndex, added_entry, entries_for
from mailgate.threading.resolver import ThreadClues, resolve
from mailgate.tickets import suppliers
from mailgate.tickets.intake_refusal import record_refusal
from mailgate.tickets.messages import Incoming, add_customer_message
from mailgate.tickets.notify import mark_bounced
from mailgate.tickets.opening import Link, NewTicket, intake_verdict, open_ticket
from mailgate.tickets.records import insert_pending, lock_ticket

log = logging.getLogger(__name__)
# "failed" is final until an operator retries it (`mailgate inbound retry` resets it).
FINAL_STATES = FINAL_INBOUND_STATES


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
    store: Store,
    inbound_id: int,
    *,
    settings: Settings,
    now: Callable[[], datetime],
    prepared: Prepared | ParseRefused | None = None,
) -> ProcessResult:
    """Turn inbound message ``inbound_id`` into a new ticket or a reply; safe to repeat.

    ``prepared``: the message already parsed by a caller that has its bytes (a receiver,
    a bulk import), which saves reading them back."""
    if prepared is None:
        with store.transaction() as session:
            row = session.get(InboundMessage, inbound_id)
            if row is None:
                raise LookupError(f"inbound message {inbound_id} does not exist")
            if row.state in FINAL_STATES:
                return _result_of(session, row)
            raw = row.raw
        prepared = prepare(raw, settings)
    try:
        with store.transaction() as session:
            # Two processes may take the same row (`mailgate run`'s receiver processes
            # inline while its worker polls): the second waits and sees the outcome.
            row = lock_row(session, InboundMessage, inbound_id, touch=InboundMessage.attempts)
            result = apply_locked(session, row, prepared, settings=settings, now=now)
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


def apply_locked(
    session: Session,
    row: InboundMessage,
    prepared: Prepared | ParseRefused,
    *,
    settings: Settings,
    now: Callable[[], datetime],
) -> ProcessResult:
    """Process ``row``, locked by the caller in ``session``: its outcome, unless it has
    one already (then the earlier outcome, read back)."""
    if row.state in FINAL_STATES:
        return _result_of(session, row)
    if isinstance(prepared, ParseRefused):
        reason = str(prepared)
        row.state, row.outcome, row.last_error = InboundState.QUARANTINED, Outcome.REFUSED, reason
        row.processed_at = now()
        return ProcessResult(row.id, row.state, row.outcome, None, reason)
    number, written = _apply(session, row, prepared, settings=settings, now=now)
    # The message's own Message-ID and its notices': one INSERT, not one per entry.
    insert_pending(session, MessageIdEntry)
    session.flush()
    pending = tuple(n.id for n in written if n.state == NoticeState.PENDING)
    return ProcessResult(row.id, row.state, row.outcome, number, row.last_error, pending)


def _result_of(session: Session, row: InboundMessage) -> ProcessResult:
    """The result of a row processed earlier, read back."""
    number = None
    if row.ticket_id is not None:
        number = session.scalar(select(Ticket.number).where(Ticket.id == row.ticket_id))
    pending = session.scalars(
        select(Notice.id)
        .where(Notice.cause.startswith(f"{_cause(row.id)}:"), Notice.state == NoticeState.PENDING)
        .order_by(Notice.id)
    )
    return ProcessResult(row.id, row.state, row.outcome, number, row.last_error, tuple(pending))


def _cause(inbound_id: int) -> str:
    """What the notices of one inbound message are caused by (unique per message)."""
    return f"inbound:{inbound_id}"


def _record_failure(store: Store, inbound_id: int, exc: Exception, max_attempts: int) -> None:
    """Invariant 8: count the failure; after ``max_attempts`` the row is marked failed."""
    with store.transaction() as session:
        row = session.get(InboundMessage, inbound_id)
        if row is None:
            return
        row.attempts += 1
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if row.attempts >= max_attempts:
            row.state = InboundState.FAILED
    log.warning("inbound %s failed processing: %s", inbound_id, type(exc).__name__)


def _apply(
    session: Session,
    row: InboundMessage,
    prepared: Prepared,
    *,
    settings: Settings,
    now: Callable[[], datetime],
) -> tuple[int | None, list[Notice]]:
    """Apply ``prepared`` under the row's lock; the ticket number and the notices written."""
    parsed = prepared.parsed
    at = now()
    row.defects = list(parsed.defects)
    screening = _screen(row, parsed, settings)
    # One query for every Message-ID this message names: its own (a duplicate?) and the
    # ones it replies to or reports on (its thread).
    named = {parsed.message_id, *parsed.in_reply_to, *parsed.references, *screening.reported_ids}
    named.discard("")
    known = entries_for(session, named)
    seen = known.get(parsed.message_id)
    if seen is not None and _same_message(session, seen, parsed):
        # Invariant 2: the same message by another route (MTA retry, second mailbox).
        _finish(row, Outcome.DUPLICATE, seen.ticket_id, at)
        number = session.scalar(select(Ticket.number).where(Ticket.id == seen.ticket_id))
        return number, []
    # A ticket the thread headers name is locked as it is read: the decision below (does
    # the sender take part? is it closed?) holds until this transaction commits.
    index = ThreadIndex(
        session,
        known=known,
        absent=named - known.keys(),
        load=lambda ticket_id: lock_ticket(session, ticket_id=ticket_id),
    )
    resolution = resolve(
        parsed,
        index,
        tag_prefix=settings.tickets.subject_tag_prefix,
        secrets=(settings.security.secret, *settings.security.old_secrets),
        clues=ThreadClues(
            envelope_to=tuple(str(a) for a in row.envelope_to),
            reported_ids=screening.reported_ids,
            forged=screening.forged,
            automatic=screening.automatic,
        ),
    )
    sender = parsed.sender.email.lower() if parsed.sender else row.envelope_from.lower()
    bounced: list[int] = []
    if screening.category == BOUNCE:
        bounced = mark_bounced(session, screening.reported_ids, screening.reason)
    incoming = Incoming(
        author_email=sender,
        author_name=parsed.sender.name if parsed.sender else "",
        text=parsed.text,
        via=resolution.method,
        html=parsed.html,
        subject=parsed.subject,
        to=tuple(str(a) for a in parsed.to),
        cc=tuple(str(a) for a in parsed.cc),
        message_id=parsed.message_id,
        content_sha256=parsed.content_sha256,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        attachments=parsed.attachments,
        inbound_id=row.id,
        new_text=prepared.new_text,
        screening={**screening.as_json(), **({"bounced_notices": bounced} if bounced else {})},
    )
    if resolution.ticket_id is None:
        customer, refused = intake_verdict(session, settings, sender)
        if refused and not row.accepted_by:
            refusal = record_refusal(
                session,
                row=row,
                parsed=parsed,
                sender=sender,
                customer=customer,
                screening=screening,
                settings=settings,
                at=at,
            )
            _finish(row, Outcome.REFUSED_POLICY, None, at)
            row.last_error = refused
            return None, refusal
        new = NewTicket(
            requester=sender,
            requester_name=incoming.author_name,
            subject=parsed.subject,
            message=incoming,
            cc=tuple(a.email for a in parsed.cc + parsed.to),
            language=parsed.language,
            # Automatic mail that matches no ticket still becomes one, visible to agents
            # and tagged, but it is never acknowledged (README "Screening").
            tags=(screening.category,) if screening.automatic else (),
            facts=message_facts(row, prepared, sender, customer),
            link=(
                Link(resolution.linked_number, "referenced", reason=resolution.reason)
                if resolution.linked_number is not None
                else None
            ),
            history_detail=(("thread", resolution.reason),),
            accepted_by=row.accepted_by,
        )
        opened = open_ticket(
            session, new, settings=settings, at=at, cause=_cause(row.id), screening=screening
        )
        ticket, message, written = opened.ticket, opened.message, opened.notices
        outcome = Outcome.NEW_TICKET
    else:
        # Locked before anything is decided: an agent closing this ticket at the same
        # moment either commits first (and this message is kept as after-close) or waits.
        # A merge that committed meanwhile moved the conversation: follow it there.
        ticket = index.loaded.get(resolution.ticket_id) or index.follow(
            lock_ticket(session, ticket_id=resolution.ticket_id)
        )
        # Mail from a supplier attached to the ticket is its side, not the customer's
        # (no statement asks unless the ticket has suppliers).
        supplier = suppliers.supplier_sender(session, ticket, sender)
        if supplier is not None:
            added = suppliers.add_supplier_message(
                session,
                ticket,
                incoming,
                supplier,
                settings=settings,
                at=at,
                cause=_cause(row.id),
                screening=screening,
            )
        else:
            added = add_customer_message(
                session,
                ticket,
                incoming,
                settings=settings,
                at=at,
                cause=_cause(row.id),
                screening=screening,
            )
        outcome, message, written = added.outcome, added.message, added.notices
    if parsed.message_id and seen is None:
        entry = MessageIdEntry(
            message_id=parsed.message_id,
            ticket_id=ticket.id,
            ticket_message_id=message.id,
            notice_id=None,  # every column given: one INSERT with the notices' entries
            direction="inbound",
        )
        session.add(entry)
        added_entry(session, entry)
    _finish(row, outcome, ticket.id, at)
    return ticket.number, list(written)


def message_facts(
    inbound: InboundMessage,
    prepared: Prepared,
    sender: str,
    customer: CustomerView | None,
) -> rules.Facts:
    """What the rules may test, from the stored message and its parsed view."""
    parsed = prepared.parsed
    recipients = [a.email.lower() for a in parsed.to + parsed.cc]
    recipients += [str(r).lower() for r in inbound.envelope_to]
    return rules.Facts(
        sender=sender,
        recipients=tuple(dict.fromkeys(recipients)),
        subject=parsed.subject,
        body=parsed.text,
        headers=prepared.headers,
        customer=customer.name if customer else "",
        language=parsed.language,
        has_attachment=any(not a.inline for a in parsed.attachments),
    )


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


def _finish(row: InboundMessage, outcome: Outcome, ticket_id: int | None, at: datetime) -> None:
    row.state, row.outcome, row.ticket_id, row.processed_at = (
        InboundState.PROCESSED,
        outcome,
        ticket_id,
        at,
    )
    row.attempts += 1
    row.last_error = ""
