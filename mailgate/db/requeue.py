"""Operator actions that put inbound messages back in the queue: retry a failed one,
accept one the intake policy refused (invariant 8: failures stay retryable)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core.errors import MailgateError, NotFound
from mailgate.core.states import InboundState, Outcome
from mailgate.db.models import InboundMessage
from mailgate.db.planner import rare


class NotRetryable(MailgateError):
    """Raised when a message's state does not allow the requested action."""


def retry(session: Session, inbound_id: int) -> InboundMessage:
    """Make a failed (or still pending) message due again with a fresh attempt count."""
    row = session.get(InboundMessage, inbound_id)
    if row is None:
        raise NotFound(f"no inbound message {inbound_id}")
    if row.state == InboundState.PROCESSED:
        raise NotRetryable(f"inbound #{inbound_id} is already processed ({row.outcome})")
    if row.state == InboundState.QUARANTINED:
        raise NotRetryable(
            f"inbound #{inbound_id} is quarantined ({row.last_error}); it would fail the same way"
        )
    row.state, row.attempts, row.next_attempt_at = InboundState.RECEIVED, 0, None
    return row


def failed_ids(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(InboundMessage.id)
            .where(rare(InboundMessage.state == InboundState.FAILED))  # db.planner
            .order_by(InboundMessage.id)
        )
    )


def accept(session: Session, inbound_id: int, *, by: str) -> InboundMessage:
    """Let a message refused by intake.policy open its ticket: it is queued again and
    processing skips the policy because ``accepted_by`` is set."""
    row = session.get(InboundMessage, inbound_id)
    if row is None:
        raise NotFound(f"no inbound message {inbound_id}")
    if row.outcome != Outcome.REFUSED_POLICY:
        raise NotRetryable(
            f"inbound #{inbound_id} was not refused by the intake policy "
            f"(state {row.state}, outcome {row.outcome or 'none'})"
        )
    row.state, row.outcome, row.accepted_by = InboundState.RECEIVED, Outcome.NONE, by
    row.attempts, row.next_attempt_at, row.processed_at, row.last_error = 0, None, None, ""
    return row
