"""The one door through which the portal and the agent actions emit notices.

Ticket notices go through the outbox (``mailgate/outbox.py``), in the caller's
transaction, so they get a signed Message-ID indexed for threading. Notices are
content-free (invariant 3): a row names only a kind, a recipient, a ticket and a
language; what the mail says is the template's job.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate import outbox
from mailgate.directory import is_support_address
from mailgate.models import Notice, Ticket
from mailgate.notices import (
    ACKNOWLEDGEMENT,
    AGENT_REPLIED,
    ASSIGNED,
    CUSTOMER_REPLIED,
    SIGN_IN_LINK,
    STATUS_CHANGED,
    NoticeSpec,
)
from mailgate.settings import Settings

# The kinds written here, re-exported for the portal's modules.
__all__ = [
    "ACKNOWLEDGEMENT", "AGENT_REPLIED", "ASSIGNED", "CUSTOMER_REPLIED", "SIGN_IN_LINK",
    "STATUS_CHANGED", "notify",
]  # fmt: skip


def notify(
    session: Session,
    *,
    settings: Settings,
    kind: str,
    recipient: str,
    ticket: Ticket | None,
    cause: str,
    at: datetime,
    language: str = "",
    in_reply_to: str = "",
) -> Notice | None:
    """Queue one notice through the outbox; returns None when there is nobody to tell.

    ``cause`` is unique: the same event twice writes one notice.
    """
    recipient = recipient.strip().lower()
    if "@" not in recipient or is_support_address(recipient, settings.smtp.addresses):
        return None  # never mail mailgate's own addresses: that is how loops start
    existing = session.scalar(select(Notice).where(Notice.cause == cause))
    if existing is not None:
        return existing
    lang = language or (ticket.language if ticket else "") or settings.defaults.language
    if ticket is None:
        return _ticketless(session, settings, kind, recipient, cause, lang, at)
    spec = NoticeSpec(
        kind=kind,
        recipient=recipient,
        language=lang,
        cause=cause,
        in_reply_to=in_reply_to,
        status=ticket.status if kind in (STATUS_CHANGED, AGENT_REPLIED) else "",
    )
    rows = outbox.write(session, ticket, [spec], settings=settings, now=at)
    return rows[0] if rows else None


def _ticketless(
    session: Session,
    settings: Settings,
    kind: str,
    recipient: str,
    cause: str,
    lang: str,
    at: datetime,
) -> Notice:
    """A notice about no ticket (the sign-in link): a random Message-ID threads nothing."""
    domain = settings.outbound.from_address.rpartition("@")[2]
    notice = Notice(
        ticket_id=None,
        kind=kind,
        recipient=recipient,
        language=lang,
        state="pending",
        cause=cause,
        message_id=f"mg.notice.{secrets.token_hex(12)}@{domain}",
        created_at=at,
        next_attempt_at=at,
        attempts=0,
    )
    session.add(notice)
    session.flush()
    return notice
