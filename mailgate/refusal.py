"""A message refused by ``intake.policy``: the one content-free answer to its sender,
written as an outbox row in the processing transaction."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailgate.directory import CustomerView
from mailgate.message import ParsedMessage
from mailgate.models import InboundMessage, Notice
from mailgate.notices import INTAKE_REFUSED
from mailgate.screening import Screening
from mailgate.settings import Settings

KIND = INTAKE_REFUSED
# A sender who keeps writing is told once a day, not once a message.
ANSWER_AGAIN_AFTER = timedelta(hours=24)


def record_refusal(
    session: Session,
    *,
    row: InboundMessage,
    parsed: ParsedMessage,
    sender: str,
    customer: CustomerView | None,
    screening: Screening,
    settings: Settings,
    at: datetime,
) -> Notice:
    """Write the ``intake_refused`` notice for ``row``: pending, or suppressed with the
    reason when the mail is automatic or the sender was answered recently.

    The notice carries no ticket; the renderer says whom to ask (the account's
    admins for a known sender, else the support address) and nothing the sender wrote.
    """
    # Invariant 5: nothing automatic answers automatic, list or forged mail.
    reason = ("" if screening.answerable else screening.reason) or _recently_answered(
        session, sender, settings, at
    )
    # Whom to ask: the account's admins, else the support desk itself. Config data only.
    contact = ", ".join(customer.admins) if customer and customer.admins else ""
    notice = Notice(
        ticket_id=None,
        inbound_id=row.id,
        kind=KIND,
        recipient=sender,
        language=(customer.language if customer and customer.language else "")
        or parsed.language
        or settings.defaults.language,
        state="suppressed" if reason else "pending",
        cause=f"{KIND}:{row.id}",
        message_id=_message_id(row.id, settings.outbound.from_address),
        in_reply_to=parsed.message_id,
        created_at=at,
        attempts=0,
        last_error=reason,
        detail={"contact": contact or settings.outbound.from_address},
    )
    session.add(notice)
    return notice


def _recently_answered(session: Session, sender: str, settings: Settings, at: datetime) -> str:
    sent_states = ("pending", "sent")
    told = session.scalar(
        select(func.count())
        .select_from(Notice)
        .where(
            Notice.recipient == sender,
            Notice.kind == KIND,
            Notice.state.in_(sent_states),
            Notice.created_at > at - ANSWER_AGAIN_AFTER,
        )
    )
    if told:
        return "sender was already told in the last 24 hours"
    # Invariant 5: automatic mail to one address is capped per hour.
    recent = session.scalar(
        select(func.count())
        .select_from(Notice)
        .where(
            Notice.recipient == sender,
            Notice.state.in_(sent_states),
            Notice.created_at > at - timedelta(hours=1),
        )
    )
    cap = settings.outbound.max_per_hour_per_address
    if recent is not None and recent >= cap:
        return f"rate limit: {cap} automatic messages an hour to {sender}"
    return ""


def _message_id(inbound_id: int, from_address: str) -> str:
    # Not a ticket Message-ID (those are signed): a reply to it threads nowhere and
    # goes through the intake policy again, which is what should happen.
    domain = from_address.rpartition("@")[2] or "mailgate.invalid"
    return f"mg-refused.{inbound_id}.{secrets.token_hex(8)}@{domain}"
