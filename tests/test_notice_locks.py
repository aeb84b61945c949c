"""The per-mailbox lock behind the notice rate limit (tickets.notify), on PostgreSQL: a
second transaction notifying the same mailbox waits for the first; one in another schema
(another mailgate, or another test, in the same database) does not."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from mailgate.db.store import Store
from mailgate.tickets.notice_counts import serialize_per_address
from tests.databases import pg_schema
from tests.servers import require

MAILBOXES = ["zed@acme.test", "carol@acme.test", "chat:acme-slack"]


@pytest.fixture
def schemas() -> Iterator[tuple[str, str]]:
    require("PostgreSQL", "127.0.0.1", 5432)
    first, second = pg_schema(), pg_schema()
    yield next(first), next(second)
    for made in (first, second):
        next(made, None)


def _waited(holder_url: str, other_url: str) -> float:
    """Seconds a transaction on ``other_url`` waited for the mailboxes while one on
    ``holder_url`` held them for half a second."""
    holder, other = Store(holder_url), Store(other_url)
    held, waited = threading.Event(), []

    def hold() -> None:
        with holder.transaction() as session:
            serialize_per_address(session, MAILBOXES)
            held.set()
            time.sleep(0.5)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        # In another order: the lock keys, not the caller's order, decide who waits.
        with other.transaction() as session:
            serialize_per_address(session, list(reversed(MAILBOXES)))
        waited.append(time.monotonic() - started)
    finally:
        thread.join()
        holder.engine.dispose()
        other.engine.dispose()
    return waited[0]


def test_a_mailbox_is_locked_once_per_schema(schemas: tuple[str, str]) -> None:
    same, elsewhere = schemas
    assert _waited(same, same) >= 0.3
    assert _waited(same, elsewhere) < 0.3
