"""Retries: the pure backoff, and the inbound task's schedule and failure marking
with the clock as a parameter (invariant 8)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mailgate.core.backoff import compute_backoff
from mailgate.core.settings import QueueSettings, Settings
from mailgate.db.models import InboundMessage
from mailgate.db.store import Store
from mailgate.inbound.intake import Envelope, accept
from mailgate.jobs.tasks import Runtime, run_inbound
from mailgate.outbound.sender import send_now
from tests.conftest import make_settings
from tests.worker_support import cure, mail, poison, ready_store

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (0, 0.5, 0.0),  # no failure yet, no wait
        (1, 0.0, 5.0),  # equal jitter: the upper half of the ceiling
        (1, 0.999, 9.995),
        (2, 0.0, 10.0),
        (3, 0.0, 20.0),
        (7, 0.0, 300.0),  # ceiling capped at 600
        (10_000, 0.0, 300.0),  # no overflow however long it keeps failing
    ],
)
def test_backoff_doubles_with_jitter_up_to_the_cap(
    attempt: int, rand: float, expected: float
) -> None:
    """Delay n lies in the upper half of min(cap, base * 2**(n-1))."""
    assert compute_backoff(attempt, base=10, cap=600, rand=lambda: rand) == pytest.approx(expected)


@pytest.fixture
def retry_settings(db_url: str) -> Settings:
    queue = QueueSettings(max_attempts=3, retry_base_seconds=10, retry_max_seconds=600)
    return make_settings(db_url, queue=queue)


@pytest.fixture
def rstore(retry_settings: Settings) -> Iterator[Store]:
    store = ready_store(retry_settings)
    yield store
    store.engine.dispose()


def _row(store: Store, inbound_id: int) -> InboundMessage:
    with store.transaction() as session:
        row = session.get(InboundMessage, inbound_id)
        assert row is not None
        return row


def test_failures_are_scheduled_with_backoff_then_marked_failed(
    rstore: Store, retry_settings: Settings
) -> None:
    """Failures are counted and scheduled with backoff from the clock, then marked failed."""
    poison(rstore)
    inbound_id = accept(
        rstore,
        mail(subject="poison"),
        source="test",
        envelope=Envelope(),
        max_bytes=10**6,
        now=lambda: T0,
    ).inbound_id
    clock = [T0]
    rt = Runtime(rstore, retry_settings, now=lambda: clock[0], rand=lambda: 0.0)
    assert run_inbound(rt, inbound_id) == 5.0
    row = _row(rstore, inbound_id)
    assert (row.state, row.attempts) == ("received", 1)
    assert "poisoned" in row.last_error
    assert row.next_attempt_at is not None
    assert row.next_attempt_at.replace(tzinfo=UTC) == T0 + timedelta(seconds=5)
    clock[0] = T0 + timedelta(seconds=5)
    assert run_inbound(rt, inbound_id) == 10.0
    clock[0] = T0 + timedelta(seconds=15)
    assert run_inbound(rt, inbound_id) is None  # third failure: given up
    row = _row(rstore, inbound_id)
    assert (row.state, row.attempts) == ("failed", 3)
    assert "poisoned" in row.last_error
    cure(rstore)
    assert run_inbound(rt, inbound_id) is None  # a failed row is left for `inbound retry`
    assert _row(rstore, inbound_id).state == "failed"


def test_task_is_idempotent_and_tolerates_missing_rows(
    rstore: Store, retry_settings: Settings
) -> None:
    """Running the inbound task twice leaves one outcome; an unknown id is dropped."""
    inbound_id = accept(
        rstore, mail(), source="test", envelope=Envelope(), max_bytes=10**6, now=lambda: T0
    ).inbound_id
    rt = Runtime(rstore, retry_settings, now=lambda: T0)
    assert run_inbound(rt, inbound_id) is None
    assert run_inbound(rt, inbound_id) is None
    row = _row(rstore, inbound_id)
    assert (row.state, row.outcome, row.attempts) == ("processed", "new_ticket", 1)
    assert run_inbound(rt, 987654) is None


def test_database_outage_is_retried_without_counting() -> None:
    """When the database cannot be reached the task asks for a retry from the broker's count."""
    down = make_settings(
        "postgresql+psycopg://nobody@127.0.0.1:1/none",
        queue=QueueSettings(retry_base_seconds=10, retry_max_seconds=600),
    )
    store = Store(down.database.url)
    rt = Runtime(store, down, now=lambda: T0, rand=lambda: 0.0)
    assert run_inbound(rt, 1, retries=2) == 20.0  # third try: upper half of 40 s
    store.engine.dispose()


def test_inline_sending_with_the_database_down_logs_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The embedded queue sends notices right after processing; if the database is gone
    by then, that is one warning (they stay pending), not a traceback per message."""
    down = make_settings("postgresql+psycopg://nobody@127.0.0.1:1/none")
    store = Store(down.database.url)
    with caplog.at_level(logging.WARNING, logger="mailgate.outbound.sender"):
        send_now(store, [1], settings=down, now=lambda: T0)
    store.engine.dispose()
    [record] = caplog.records
    assert "notices stay pending: database unavailable" in record.getMessage()
    assert record.exc_info is None
