"""What a notice says: the values its templates see, and the email composed from them.

Both mail and chat notices start from ``values_for``: the ticket reference, the portal
link, system words and dates, never text a customer or agent wrote (invariant 3).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from mailgate.core.errors import PermanentFailure
from mailgate.core.notices import SIGN_IN_LINK, TODO_REMINDER
from mailgate.core.settings import Settings
from mailgate.core.statuses import is_closed
from mailgate.db.models import Notice, Ticket
from mailgate.outbound.compose import Envelope, compose
from mailgate.outbound.render import NoticeValues, Renderer


def values_for(
    notice: Notice, ticket: Ticket | None, settings: Settings, link: str = ""
) -> NoticeValues:
    """The only values a template sees: reference, link, system vocabulary, dates.
    ``link`` is the URL of a notice about no ticket (the sign-in link)."""
    if ticket is None:  # intake_refused, sign_in_link, a standalone to-do's reminder
        return NoticeValues(
            number=None,
            tag="",
            url=link or _portal_home(settings.ticket_url(0)),
            status="",
            type="",
            priority="",
            recipient=notice.recipient,
            date=notice.created_at.date().isoformat(),
            contact=str(notice.detail.get("contact") or settings.outbound.from_address),
            due_at=_when(str(notice.detail.get("due_at") or "")),
        )
    assert ticket.number is not None
    number = ticket.number
    return NoticeValues(
        number=number,
        tag=f"[{settings.tickets.subject_tag_prefix}{number}]",
        url=settings.ticket_url(number),
        status=str(notice.detail.get("status") or ticket.status),
        type=ticket.type,
        priority=ticket.priority,
        recipient=notice.recipient,
        date=notice.created_at.date().isoformat(),
        due=str(notice.detail.get("due") or ""),
        due_at=_when(str(notice.detail.get("due_at") or "")),
    )


def _when(iso: str) -> str:
    """An ISO time as a reminder shows it: ``2026-01-05 10:30 UTC``."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _sign_in_link(session: Session, settings: Settings, notice: Notice) -> str:
    if notice.kind != SIGN_IN_LINK:
        return ""
    from mailgate.tickets.sign_in import link_for_notice  # the portal rebuilds it from the secret

    link = link_for_notice(session, settings, notice)
    if link is None:
        raise PermanentFailure("the sign-in link behind this notice is gone")
    return link


def own_link(session: Session, settings: Settings, notice: Notice) -> str:
    """The link of a notice about no ticket: the sign-in link, or a standalone to-do's
    reminder's "My to-dos" page on this mailgate's own portal (where agents sign in)."""
    if notice.kind == TODO_REMINDER:
        return settings.web.base_url.rstrip("/") + "/agent/todos"
    return _sign_in_link(session, settings, notice)


def _portal_home(ticket_url: str) -> str:
    parts = urlsplit(ticket_url)
    return f"{parts.scheme}://{parts.netloc}/" if parts.scheme and parts.netloc else ""


def _about_closed(notice: Notice, ticket: Ticket, settings: Settings) -> bool:
    """Is the ticket closed now, or in the status this notice announces?"""
    announced = str(notice.detail.get("status") or "")
    return (
        ticket.closed_at is not None
        or is_closed(ticket.status, settings.tickets)
        or is_closed(announced, settings.tickets)
    )


def build_message(
    notice: Notice,
    ticket: Ticket | None,
    *,
    settings: Settings,
    renderer: Renderer,
    now: datetime,
    link: str = "",
) -> EmailMessage:
    """The composed message for one notice row."""
    values = values_for(notice, ticket, settings, link)
    rendered = renderer.render(notice.kind, notice.language, values)
    envelope = Envelope(
        notice_id=notice.id,
        kind=notice.kind,
        recipient=notice.recipient,
        ticket_number=ticket.number if ticket is not None else None,
        message_id=notice.message_id,
        in_reply_to=notice.in_reply_to,
        ticket_closed=ticket is not None and _about_closed(notice, ticket, settings),
    )
    return compose(
        envelope,
        rendered,
        from_address=settings.outbound.from_address,
        secret=settings.security.secret,
        now=now,
    )
