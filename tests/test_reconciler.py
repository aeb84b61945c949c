"""The reconciler: which pending rows it re-enqueues, that it waits a full interval
before taking a row again, and that two at once take different rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mailgate.core.settings import Settings
from mailgate.db.models import InboundMessage, Notice
from mailgate.db.store import Store
from mailgate.inbound.intake import Envelope, accept
from mailgate.jobs.reconciler import _claim, inbound_due, reconcile
from tests.conftest import make_settings
from tests.worker_support import mail, ready_store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STALE = timedelta(minutes=5)


@pytest.fixture
def rsettings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def rstore(rsettings: Settings) -> Iterator[Store]:
    store = ready_store(rsettings)
    yield store
    store.engine.dispose()


def _stored(store: Store, at: datetime, **changes: object) -> int:
    inbound_id = accept(
        store, mail(), source="test", envelope=Envelope(), max_bytes=10**6, now=lambda: at
    ).inbound_id
    with store.transaction() as session:
        row = session.get(InboundMessage, inbound_id)
        for key, value in changes.items():
            setattr(row, key, value)
    return inbound_id


def _run(store: Store, now: datetime) -> tuple[list[int], list[int]]:
    inbound: list[int] = []
    notices: list[int] = []
    reconcile(
        store,
        now=now,
        older_than=STALE,
        enqueue_inbound=inbound.append,
        enqueue_notice=notices.append,
    )
    return inbound, notices


def test_only_stale_pending_rows_are_enqueued_once_per_interval(rstore: Store) -> None:
    """Only received rows idle past the interval are re-enqueued, then not again for an interval."""
    stale = _stored(rstore, T0)
    fresh = _stored(rstore, T0 + timedelta(minutes=8))
    _stored(rstore, T0, state="processed")
    _stored(rstore, T0, state="failed")
    backing_off = _stored(rstore, T0, next_attempt_at=T0 + timedelta(minutes=9))
    now = T0 + timedelta(minutes=10)
    assert _run(rstore, now) == ([stale], [])
    assert _run(rstore, now + timedelta(minutes=1)) == ([], [])
    later = now + STALE  # everything now waited a full interval since its last time
    assert _run(rstore, later) == ([stale, fresh, backing_off], [])


def test_pending_notices_are_enqueued(rstore: Store) -> None:
    """A notice left pending past the interval goes back to the queue too."""
    inbound_id = _stored(rstore, T0, state="processed")
    with rstore.transaction() as session:
        session.add(
            Notice(
                ticket_id=None,
                inbound_id=inbound_id,
                kind="intake_refused",
                recipient="x@y.test",
                cause="c1",
                message_id="m1@x",
                created_at=T0,
                next_attempt_at=T0,
            )
        )
    with rstore.transaction() as session:
        notice_id = session.scalar(select(Notice.id))
    assert _run(rstore, T0 + STALE) == ([], [notice_id])


@pytest.mark.postgres
def test_concurrent_reconcilers_take_different_rows(pg_url: str) -> None:
    """On PostgreSQL a row claimed by one reconciler is skipped by another meanwhile."""
    store = ready_store(make_settings(pg_url))
    try:
        first, second = _stored(store, T0), _stored(store, T0)
        now = T0 + STALE
        with store.transaction() as session:
            query_limit_one = inbound_due(now, STALE) & (InboundMessage.id == first)
            assert _claim(session, InboundMessage, query_limit_one, now) == [first]
            # The first reconciler's transaction is still open: the other skips its row.
            assert _run(store, now) == ([second], [])
    finally:
        store.engine.dispose()
