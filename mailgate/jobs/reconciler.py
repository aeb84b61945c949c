"""The reconciler: re-enqueue work the database still shows as pending after
``queue.reconcile_after_seconds`` (a lost broker message, a killed worker).

Safe when several run at once: on PostgreSQL each takes its rows with ``FOR
UPDATE SKIP LOCKED``, and the times it writes keep a row from being picked
again before another full interval. Where two still enqueue the same id, the
actors are idempotent, so the second run only finds the work done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from mailgate.core.states import InboundState, NoticeState
from mailgate.db.models import InboundMessage, Notice
from mailgate.db.planner import rare
from mailgate.db.store import Store

log = logging.getLogger(__name__)
BATCH = 500


@dataclass(frozen=True)
class Reconciled:
    inbound: tuple[int, ...] = ()
    notices: tuple[int, ...] = ()


def inbound_due(now: datetime, older_than: timedelta) -> ColumnElement[bool]:
    """Rows ``received`` whose last scheduled time is at least ``older_than`` ago."""
    since = func.coalesce(InboundMessage.next_attempt_at, InboundMessage.received_at)
    waiting = rare(InboundMessage.state == InboundState.RECEIVED)  # db.planner
    return waiting & (since <= now - older_than)


def notices_due(now: datetime, older_than: timedelta) -> ColumnElement[bool]:
    """Notices ``pending`` whose last scheduled time is at least ``older_than`` ago."""
    since = func.coalesce(Notice.next_attempt_at, Notice.created_at)
    return rare(Notice.state == NoticeState.PENDING) & (since <= now - older_than)


def _claim(
    session: Session,
    model: type[InboundMessage] | type[Notice],
    condition: ColumnElement[bool],
    now: datetime,
) -> list[int]:
    query = select(model).where(condition).order_by(model.id).limit(BATCH)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows: list[InboundMessage | Notice] = list(session.scalars(query))
    for row in rows:
        # Stamp the row so the next pass waits a full interval before trying again.
        row.next_attempt_at = now
    return [row.id for row in rows]


def reconcile(
    store: Store,
    *,
    now: datetime,
    older_than: timedelta,
    enqueue_inbound: Callable[[int], object],
    enqueue_notice: Callable[[int], object] | None = None,
) -> Reconciled:
    """Enqueue every stale pending row, at most ``BATCH`` of each kind per call.

    Rows are stamped and committed before they are enqueued: a crash in between
    leaves them for the next pass, never lost.
    """
    with store.transaction() as session:
        inbound = _claim(session, InboundMessage, inbound_due(now, older_than), now)
        notices: list[int] = []
        if enqueue_notice is not None:
            notices = _claim(session, Notice, notices_due(now, older_than), now)
    for inbound_id in inbound:
        enqueue_inbound(inbound_id)
    for notice_id in notices:
        assert enqueue_notice is not None
        enqueue_notice(notice_id)
    if inbound or notices:
        log.info("reconciler re-enqueued %d inbound, %d notices", len(inbound), len(notices))
    return Reconciled(tuple(inbound), tuple(notices))


def count_due(store: Store, *, now: datetime, notices: bool) -> int:
    """Pending work that is due now: what ``mailgate worker --burst`` waits for."""
    with store.transaction() as session:
        total = session.scalar(
            select(func.count()).select_from(InboundMessage).where(inbound_due(now, timedelta(0)))
        )
        if notices:
            total = (total or 0) + (
                session.scalar(
                    select(func.count()).select_from(Notice).where(notices_due(now, timedelta(0)))
                )
                or 0
            )
        return int(total or 0)
