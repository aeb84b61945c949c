"""Deliver outbox rows: each notice at most once, retried with backoff, failures kept.

``send_notice`` claims the row with ``UPDATE ... WHERE state = 'pending'`` inside the
transaction that later marks it sent: the update takes the row lock (the write lock on
SQLite), so two senders never both deliver one notice, and a crash before the commit
leaves it pending to be sent again with the same Message-ID (or, for a chat or webhook
row, the same delivery id, by which receivers drop a repeat).

Mail rows go through the configured transport (file outbox or smarthost); rows with a
``channel`` are POSTed to their chat service or webhook (``outbound.chat_delivery``).
What a claimed notice becomes is ``outbound.delivery``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailgate.core.errors import NotFound, TemporaryFailure
from mailgate.core.settings import Settings
from mailgate.core.states import NoticeState
from mailgate.db.mail_queries import notices_due_now
from mailgate.db.models import Notice, Ticket
from mailgate.db.store import Store
from mailgate.outbound.delivery import Composed, compose, hand_over
from mailgate.outbound.render import Renderer, renderer_for
from mailgate.outbound.transport import FileTransport, Transport, make_transport

log = logging.getLogger(__name__)
PENDING = NoticeState.PENDING
# Notices per transaction for the file outbox (see ``_send_batch``).
BATCH = 100


@dataclass(frozen=True)
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0


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
    state, _ = _send_one(
        store, notice_id, settings=settings, transport=transport, now=now, renderer=renderer
    )
    return state


def _send_one(
    store: Store,
    notice_id: int,
    *,
    settings: Settings,
    transport: Transport,
    now: Callable[[], datetime],
    renderer: Renderer,
) -> tuple[str, bool]:
    """Claim and deliver one notice: its state afterwards, and whether it was claimed
    (False: it was not pending, and was left alone)."""
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
            return notice.state, False
        ticket = session.get(Ticket, notice.ticket_id) if notice.ticket_id else None
        composed = compose(
            session,
            notice,
            ticket,
            settings=settings,
            transport=transport,
            renderer=renderer,
            at=at,
        )
        return hand_over(notice, composed, settings=settings, at=at), True


def _send_batch(
    store: Store,
    notice_ids: list[int],
    *,
    settings: Settings,
    transport: Transport,
    now: Callable[[], datetime],
    renderer: Renderer,
) -> list[str]:
    """``send_notice`` for several mail notices: one statement claims them all, one
    commit records every outcome. Only for a transport whose resend is harmless and
    quick (the file outbox overwrites ``notice-<id>.eml``): a crash before the commit
    sends the whole batch again, with the same Message-IDs. Chat and webhook rows are not
    claimed here (they come back "skipped"): each is POSTed in a transaction of its own,
    like mail to a smarthost.

    The notices are composed first, in a transaction that only reads: on SQLite the
    claim takes the file's write lock, and composing a hundred notices (templates, the
    email package's generator: about 1 ms each) held it for a tenth of a second, in
    which no message could be stored or processed. A notice is claimed, written and
    marked in the second transaction as before; one that became pending in between is
    composed there."""
    at = now()

    def composed(session: Session, notices: Sequence[Notice]) -> dict[int, Composed]:
        tickets = _tickets_of(session, notices)
        return {
            n.id: compose(
                session,
                n,
                tickets.get(n.ticket_id) if n.ticket_id is not None else None,
                settings=settings,
                transport=transport,
                renderer=renderer,
                at=at,
            )
            for n in notices
        }

    mail = (Notice.id.in_(notice_ids), Notice.state == PENDING, Notice.channel == "")
    with store.transaction() as session:
        ready = composed(session, session.scalars(select(Notice).where(*mail)).all())
    with store.transaction() as session:
        claimed = session.scalars(
            update(Notice)
            .where(*mail)
            .values(attempts=Notice.attempts + 1)
            .returning(Notice)
            .execution_options(populate_existing=True)
        ).all()
        ready |= composed(session, [n for n in claimed if n.id not in ready])
        states = {
            notice.id: hand_over(notice, ready[notice.id], settings=settings, at=at)
            for notice in sorted(claimed, key=lambda n: n.id)
        }
    return [states.get(notice_id, "skipped") for notice_id in notice_ids]


def _tickets_of(session: Session, notices: Iterable[Notice]) -> dict[int, Ticket]:
    ticket_ids = {n.ticket_id for n in notices if n.ticket_id is not None}
    if not ticket_ids:
        return {}
    return {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids)))}


def _send_alone(
    store: Store,
    notice_id: int,
    *,
    settings: Settings,
    transport: Transport,
    now: Callable[[], datetime],
    renderer: Renderer,
) -> str:
    """A notice a batch left, in its own transaction; "skipped" if it was not pending."""
    state, claimed = _send_one(
        store, notice_id, settings=settings, transport=transport, now=now, renderer=renderer
    )
    return state if claimed else "skipped"


def due_notices(store: Store, *, now: datetime, limit: int = 100) -> list[int]:
    """Pending notices whose time has come, oldest first."""
    with store.transaction() as session:
        query = select(Notice.id).where(notices_due_now(now)).order_by(Notice.id)
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
                # What the batch left: chat and webhook rows, and rows no longer pending.
                for i, state in enumerate(states):
                    if state == "skipped":
                        states[i] = _send_alone(
                            store,
                            chunk[i],
                            settings=settings,
                            transport=transport,
                            now=now,
                            renderer=renderer,
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
