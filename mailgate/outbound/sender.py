"""Deliver outbox rows: each notice at most once, retried with backoff, failures kept.

``send_notice`` claims the row with ``UPDATE ... WHERE state = 'pending'`` inside the
transaction that later marks it sent: the update takes the row lock (the write lock on
SQLite), so two senders never both deliver one notice, and a crash before the commit
leaves it pending to be sent again with the same Message-ID.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import urlsplit

import jinja2
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from mailgate.core.backoff import next_attempt
from mailgate.core.errors import NotFound, PermanentFailure, TemporaryFailure
from mailgate.core.notices import SIGN_IN_LINK, TODO_REMINDER
from mailgate.core.settings import Settings
from mailgate.core.states import NoticeState
from mailgate.core.statuses import is_closed
from mailgate.db.models import Notice, Ticket
from mailgate.db.store import Store
from mailgate.outbound.compose import Envelope, compose
from mailgate.outbound.render import NoticeValues, Renderer, renderer_for
from mailgate.outbound.transport import FileTransport, Transport, make_transport

log = logging.getLogger(__name__)
PENDING, SENT, FAILED = NoticeState.PENDING, NoticeState.SENT, NoticeState.FAILED
# Notices per transaction for the file outbox (see ``_send_batch``).
BATCH = 100


@dataclass(frozen=True)
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0


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


def _own_link(session: Session, settings: Settings, notice: Notice) -> str:
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


def send_notice(
    store: Store,
    notice_id: int,
    *,
    settings: Settings,
    transport: Transport,
    now: Callable[[], datetime],
    renderer: Renderer | None = None,
) -> str:
    """Try to deliver notice ``notice_id`` once; returns its state afterwards. A notice
    that is not pending (sent, failed, bounced, suppressed) is left alone."""
    renderer = renderer or renderer_for(settings.outbound.templates, settings.defaults.language)
    at = now()
    with store.transaction() as session:
        claimed = session.execute(
            update(Notice)
            .where(Notice.id == notice_id, Notice.state == PENDING)
            .values(attempts=Notice.attempts + 1)
        )
        notice = session.get(Notice, notice_id, populate_existing=True)
        if notice is None:
            raise NotFound(f"no notice #{notice_id}")
        if claimed.rowcount == 0:  # type: ignore[attr-defined]
            return notice.state
        ticket = session.get(Ticket, notice.ticket_id) if notice.ticket_id else None
        return _deliver(
            session,
            notice,
            ticket,
            settings=settings,
            transport=transport,
            renderer=renderer,
            at=at,
        )


def _send_batch(
    store: Store,
    notice_ids: list[int],
    *,
    settings: Settings,
    transport: Transport,
    now: Callable[[], datetime],
    renderer: Renderer,
) -> list[str]:
    """``send_notice`` for several notices in one transaction: one statement claims them
    all, one reads their tickets, one commit records every outcome. Only for a transport
    whose resend is harmless and quick (the file outbox overwrites ``notice-<id>.eml``):
    a crash before the commit sends the whole batch again, with the same Message-IDs."""
    at = now()
    with store.transaction() as session:
        claimed = session.scalars(
            update(Notice)
            .where(Notice.id.in_(notice_ids), Notice.state == PENDING)
            .values(attempts=Notice.attempts + 1)
            .returning(Notice)
            .execution_options(populate_existing=True)
        ).all()
        ticket_ids = {n.ticket_id for n in claimed if n.ticket_id is not None}
        tickets = (
            {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids)))}
            if ticket_ids
            else {}
        )
        states = {
            notice.id: _deliver(
                session,
                notice,
                tickets.get(notice.ticket_id) if notice.ticket_id is not None else None,
                settings=settings,
                transport=transport,
                renderer=renderer,
                at=at,
            )
            for notice in sorted(claimed, key=lambda n: n.id)
        }
    return [states.get(notice_id, "skipped") for notice_id in notice_ids]


def _deliver(
    session: Session,
    notice: Notice,
    ticket: Ticket | None,
    *,
    settings: Settings,
    transport: Transport,
    renderer: Renderer,
    at: datetime,
) -> str:
    """Compose and hand over one claimed notice; its state afterwards."""
    try:
        link = _own_link(session, settings, notice)
        message = build_message(
            notice, ticket, settings=settings, renderer=renderer, now=at, link=link
        )
        # Headers are checked when written out: fail here, not mid-send.
        data = message.as_bytes()
    except jinja2.TemplateError as exc:
        # A broken template is the operator's to fix (check-config names it); retry.
        _retry_later(notice, f"{type(exc).__name__}: {exc}", at, settings)
        return notice.state
    except PermanentFailure as exc:
        return _fail(notice, str(exc))
    except Exception as exc:  # noqa: BLE001 - this notice can never be composed
        # Retrying cannot help (e.g. a header value the email package refuses): failed
        # at once with the reason, so it neither loops nor blocks the rest of a batch.
        return _fail(notice, f"cannot be composed: {type(exc).__name__}: {exc}")
    try:
        transport.send(
            notice.id,
            message,
            sender=settings.outbound.from_address,
            recipient=notice.recipient,
            data=data,
        )
    except PermanentFailure as exc:
        _fail(notice, str(exc))
    except TemporaryFailure as exc:
        _retry_later(notice, f"{type(exc).__name__}: {exc}", at, settings)
    else:
        notice.state, notice.sent_at, notice.last_error = SENT, at, ""
        notice.next_attempt_at = None
        log.info("notice %s (%s) sent", notice.id, notice.kind)
    return notice.state


def _fail(notice: Notice, reason: str) -> str:
    notice.state, notice.last_error, notice.next_attempt_at = FAILED, reason[:2000], None
    log.warning("notice %s failed permanently: %s", notice.id, reason.split(":", 1)[0])
    return notice.state


def _retry_later(notice: Notice, error: str, at: datetime, settings: Settings) -> None:
    notice.last_error = error[:2000]
    if notice.attempts >= settings.outbound.max_attempts:
        notice.state, notice.next_attempt_at = FAILED, None
        notice.last_error = f"gave up after {notice.attempts} attempts: {error}"[:2000]
        log.warning("notice %s failed after %s attempts", notice.id, notice.attempts)
        return
    notice.next_attempt_at = next_attempt(notice.attempts, at)
    log.info("notice %s will be retried: %s", notice.id, error)


def due_notices(store: Store, *, now: datetime, limit: int = 100) -> list[int]:
    """Pending notices whose time has come, oldest first."""
    with store.transaction() as session:
        query = (
            select(Notice.id)
            .where(
                Notice.state == PENDING,
                or_(Notice.next_attempt_at.is_(None), Notice.next_attempt_at <= now),
            )
            .order_by(Notice.id)
        )
        if limit:
            query = query.limit(limit)
        return list(session.scalars(query))


def send_many(
    store: Store,
    notice_ids: Iterable[int],
    *,
    settings: Settings,
    now: Callable[[], datetime],
    transport: Transport | None = None,
) -> SendReport:
    """Send these notices over one transport (one SMTP connection for the batch)."""
    own = transport is None
    transport = transport or make_transport(settings.outbound)
    renderer = renderer_for(settings.outbound.templates, settings.defaults.language)
    counts = {"sent": 0, "retrying": 0, "failed": 0, "skipped": 0}
    ids = list(notice_ids)
    # The file outbox takes a batch per transaction; a smarthost one notice at a time, so
    # that no transaction (SQLite's write lock) waits on the network for a whole batch.
    step = BATCH if isinstance(transport, FileTransport) else 1
    try:
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            if len(chunk) == 1:
                states = [
                    send_notice(
                        store,
                        chunk[0],
                        settings=settings,
                        transport=transport,
                        now=now,
                        renderer=renderer,
                    )
                ]
            else:
                states = _send_batch(
                    store, chunk, settings=settings, transport=transport, now=now, renderer=renderer
                )
            for state in states:
                key = {"sent": "sent", "failed": "failed", "pending": "retrying"}
                counts[key.get(state, "skipped")] += 1
    finally:
        if own:
            transport.close()
    return SendReport(**counts)


def send_pending(
    store: Store,
    *,
    settings: Settings,
    now: Callable[[], datetime],
    transport: Transport | None = None,
    limit: int = 100,
) -> SendReport:
    """Send every pending notice whose time has come (up to ``limit``)."""
    ids = due_notices(store, now=now(), limit=limit)
    return send_many(store, ids, settings=settings, now=now, transport=transport)


def send_now(
    store: Store, notice_ids: Iterable[int], *, settings: Settings, now: Callable[[], datetime]
) -> None:
    """The embedded queue: send right after the commit that wrote them. A failure here is
    recorded on the notice (or leaves it pending); it never fails the caller."""
    try:
        send_many(store, list(notice_ids), settings=settings, now=now)
    except TemporaryFailure as exc:  # the database went away: expected, one line
        log.warning("inline sending failed; notices stay pending: %s", exc)
    except Exception:  # the notices stay pending for `mailgate notices send`
        log.warning("inline sending failed; notices stay pending", exc_info=True)
