"""What the actors do, without dramatiq: load a row by id, call one service, and say
when to try again. Both tasks are idempotent: running one twice has no further effect.
"""

from __future__ import annotations

import importlib.util
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from mailgate.core.backoff import compute_backoff
from mailgate.core.errors import TemporaryFailure
from mailgate.core.settings import Settings
from mailgate.core.states import InboundState, NoticeState
from mailgate.db.mail_queries import notices_due_now
from mailgate.db.models import InboundMessage, Notice
from mailgate.db.store import Store
from mailgate.tickets.mail import process

log = logging.getLogger(__name__)
SENDER_MODULE = "mailgate.outbound.sender"


@dataclass(frozen=True)
class Runtime:
    """What a worker process hands its tasks: the store, the settings, the clock."""

    store: Store
    settings: Settings
    now: Callable[[], datetime]
    rand: Callable[[], float] = field(default=random.random)

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (queue.retry_base/max_seconds)."""
        q = self.settings.queue
        return compute_backoff(
            attempt, base=q.retry_base_seconds, cap=q.retry_max_seconds, rand=self.rand
        )


def notices_available() -> bool:
    """True once the outbound sender is part of this install."""
    try:
        return importlib.util.find_spec(SENDER_MODULE) is not None
    except ModuleNotFoundError:  # the parent package is missing too
        return False


def run_inbound(rt: Runtime, inbound_id: int, *, retries: int = 0) -> float | None:
    """Process stored message ``inbound_id``. Returns None when there is nothing more
    to do (processed, quarantined, marked failed, or gone), else the seconds to wait
    before the next attempt. ``retries`` is how often the broker already retried."""
    try:
        if _given_up(rt, inbound_id):
            return None
        process(rt.store, inbound_id, settings=rt.settings, now=rt.now)
    except LookupError:
        log.warning("inbound %s does not exist; dropping its job", inbound_id)
        return None
    except TemporaryFailure as exc:
        # The database could not be reached, so nothing is counted on the row.
        log.warning("inbound %s: temporary failure, will retry: %s", inbound_id, exc)
        return rt.backoff(retries + 1)
    except Exception:  # noqa: BLE001 - process() recorded it on the row (invariant 8)
        return _schedule_retry(rt, inbound_id, retries)
    return None


def _given_up(rt: Runtime, inbound_id: int) -> bool:
    # A failed row waits for `mailgate inbound retry`; a stray job must not revive it.
    with rt.store.transaction() as session:
        state = session.scalar(select(InboundMessage.state).where(InboundMessage.id == inbound_id))
    return state == NoticeState.FAILED


def _schedule_retry(rt: Runtime, inbound_id: int, retries: int) -> float | None:
    """After a counted failure: the row's backoff, written on the row so the
    reconciler and the embedded worker wait for it too; None once it is failed."""
    try:
        with rt.store.transaction() as session:
            row = session.get(InboundMessage, inbound_id)
            if row is None or row.state != InboundState.RECEIVED:
                return None
            delay = rt.backoff(max(row.attempts, 1))
            row.next_attempt_at = rt.now() + timedelta(seconds=delay)
            return delay
    except TemporaryFailure:
        return rt.backoff(retries + 1)


def pending_notice_ids(rt: Runtime, inbound_id: int) -> list[int]:
    """Outbox rows due now that processing ``inbound_id`` may have written: those
    naming it, and those of the ticket it went to."""
    with rt.store.transaction() as session:
        ticket_id = session.scalar(
            select(InboundMessage.ticket_id).where(InboundMessage.id == inbound_id)
        )
        cause = Notice.inbound_id == inbound_id
        if ticket_id is not None:
            cause = or_(cause, Notice.ticket_id == ticket_id)
        return list(session.scalars(select(Notice.id).where(cause, notices_due_now(rt.now()))))


def run_notice(rt: Runtime, notice_id: int, *, retries: int = 0) -> float | None:
    """Send outbox row ``notice_id`` through the outbound sender; None when done,
    else the seconds to wait. The sender marks the row sent, failed or bounced, and
    must itself lock the row: two jobs for one pending notice may start together."""
    from mailgate.outbound.sender import send_many

    try:
        with rt.store.transaction() as session:
            state = session.scalar(select(Notice.state).where(Notice.id == notice_id))
        if state != NoticeState.PENDING:
            return None  # sent, failed or suppressed already: a duplicate job
        report = send_many(rt.store, [notice_id], settings=rt.settings, now=rt.now)
    except TemporaryFailure as exc:
        log.warning("notice %s: temporary failure, will retry: %s", notice_id, exc)
        return rt.backoff(retries + 1)
    if not report.retrying:
        return None
    # The sender scheduled the retry on the row (next_attempt_at); the job follows it.
    with rt.store.transaction() as session:
        due = session.scalar(select(Notice.next_attempt_at).where(Notice.id == notice_id))
    if due is None:
        return rt.backoff(retries + 1)
    return max(1.0, (due - rt.now()).total_seconds())
