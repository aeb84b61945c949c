"""Leases on SQLite and PostgreSQL: one holder at a time, renewal, expiry, release, races."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from mailgate.db import leases
from mailgate.db.store import Store

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_second_holder_waits_while_the_first_holds(store: Store) -> None:
    """A held, unexpired lease is refused to anyone else and renewed for its holder."""
    assert leases.acquire(store, "imap:support", "a", ttl=60, now=lambda: at(0))
    assert not leases.acquire(store, "imap:support", "b", ttl=60, now=lambda: at(1))
    assert leases.acquire(store, "imap:support", "a", ttl=60, now=lambda: at(50))
    # Renewed at 50 s: still a's at 100 s, though the first grant ended at 60 s.
    assert not leases.acquire(store, "imap:support", "b", ttl=60, now=lambda: at(100))
    state = leases.current(store, "imap:support")
    assert state is not None and state.holder == "a" and state.expires_at == at(110)


def test_expired_lease_is_taken_over(store: Store) -> None:
    """A holder that stops renewing loses the lease once it expires, and cannot renew it back."""
    assert leases.acquire(store, "imap:support", "a", ttl=60, now=lambda: at(0))
    assert leases.acquire(store, "imap:support", "b", ttl=60, now=lambda: at(61))
    assert not leases.acquire(store, "imap:support", "a", ttl=60, now=lambda: at(62))


def test_release_frees_it_at_once_but_only_by_its_holder(store: Store) -> None:
    """Release by someone else is a no-op; release by the holder lets the next one in."""
    assert leases.acquire(store, "imap:support", "a", ttl=60, now=lambda: at(0))
    leases.release(store, "imap:support", "b")
    assert not leases.acquire(store, "imap:support", "b", ttl=60, now=lambda: at(1))
    leases.release(store, "imap:support", "a")
    assert leases.current(store, "imap:support") is None
    assert leases.acquire(store, "imap:support", "b", ttl=60, now=lambda: at(2))


def test_leases_are_independent_by_name(store: Store) -> None:
    """Each mailbox has its own lease."""
    assert leases.acquire(store, "imap:support", "a", ttl=60, now=lambda: at(0))
    assert leases.acquire(store, "imap:sales", "b", ttl=60, now=lambda: at(0))


def _race(store: Store, contenders: int, now: datetime) -> list[str]:
    barrier = threading.Barrier(contenders)
    winners: list[str] = []
    lock = threading.Lock()

    def contend(name: str) -> None:
        barrier.wait()
        if leases.acquire(store, "imap:support", name, ttl=60, now=lambda: now):
            with lock:
                winners.append(name)

    threads = [threading.Thread(target=contend, args=(f"h{i}",)) for i in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return winners


def test_racing_contenders_exactly_one_wins(store: Store) -> None:
    """Eight pollers racing for a free lease, then for an expired one: one winner each time."""
    first = _race(store, 8, at(0))
    assert len(first) == 1
    second = _race(store, 8, at(120))
    assert len(second) == 1
    state = leases.current(store, "imap:support")
    assert state is not None and state.holder == second[0]
