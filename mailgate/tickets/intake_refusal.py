"""A message refused by ``intake.policy``: the one content-free answer to its sender,
decided like every other notice, in the processing transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailgate.core import notices
from mailgate.core.directory import CustomerView
from mailgate.core.message import ParsedMessage
from mailgate.core.screening import Screening
from mailgate.core.settings import Settings
from mailgate.core.states import NoticeState
from mailgate.db.models import InboundMessage, Notice
from mailgate.tickets.notify import notify

KIND = notices.INTAKE_REFUSED
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
) -> list[Notice]:
    """Write the ``intake_refused`` notice for ``row``: pending, or suppressed with the
    reason (automatic mail, the sender told in the last day, the hourly cap).

    The notice carries no ticket; the renderer says whom to ask (the account's admins
    for a known sender, else the support address) and nothing the sender wrote.
    """
    event = notices.Event(
        kind=notices.INTAKE_REFUSAL,
        cause=f"{KIND}:{row.id}",
        ticket_number=0,
        requester=sender,
        sender=sender,
        in_reply_to=parsed.message_id,
        in_reply_to_author=sender,
    )
    # Whom to ask: the account's admins, else the support desk itself. Config data only.
    contact = ", ".join(customer.admins) if customer and customer.admins else ""
    return notify(
        session,
        event,
        settings=settings,
        now=at,
        screening=screening,
        language=(customer.language if customer and customer.language else "") or parsed.language,
        suppress=_told_today(session, sender, at),
        inbound_id=row.id,
        detail={"contact": contact or settings.outbound.from_address},
    )


def _told_today(session: Session, sender: str, at: datetime) -> str:
    told = session.scalar(
        select(func.count())
        .select_from(Notice)
        .where(
            Notice.recipient == sender,
            Notice.kind == KIND,
            Notice.state.in_((NoticeState.PENDING, NoticeState.SENT)),
            Notice.created_at > at - ANSWER_AGAIN_AFTER,
        )
    )
    return "sender was already told in the last 24 hours" if told else ""
