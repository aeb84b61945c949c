"""Leases: at most one holder of a named job at a time, across processes and machines.

A lease is a row (name, holder, expires_at). The holder renews it well before it
expires; a holder that dies simply stops renewing and another takes over after
``ttl`` seconds. Acquire and renew are the same conditional statement, atomic on
SQLite (one writer at a time) and PostgreSQL (an UPDATE re-checks its WHERE on
the row it waited for), so two contenders can never both win.

Expiry compares the holders' own clocks: keep machines in NTP sync, well within
the margin between renewal and expiry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError

from mailgate.db.models import Lease
from mailgate.db.store import Store


@dataclass(frozen=True)
class LeaseState:
    holder: str
    expires_at: datetime


def acquire(
    store: Store, name: str, holder: str, *, ttl: float, now: Callable[[], datetime]
) -> bool:
    """Take or renew lease ``name`` for ``holder`` for ``ttl`` seconds.

    True when ``holder`` now has it: it was free, expired, or already theirs.
    False when someone else holds an unexpired lease.
    """
    at = now().astimezone(UTC)
    expires = at + timedelta(seconds=ttl)
    with store.transaction() as session:
        result = session.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < at))
            .values(holder=holder, expires_at=expires)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        if result.rowcount == 1:
            return True
    try:
        with store.transaction() as session:
            session.execute(insert(Lease).values(name=name, holder=holder, expires_at=expires))
    except IntegrityError:
        # The row exists and is someone else's (or another contender inserted it first).
        return False
    return True


def release(store: Store, name: str, holder: str) -> None:
    """Give lease ``name`` up, if ``holder`` still has it, so a waiting holder need not
    wait for it to expire."""
    with store.transaction() as session:
        session.execute(
            delete(Lease)
            .where(Lease.name == name, Lease.holder == holder)
            .execution_options(synchronize_session=False)
        )


def current(store: Store, name: str) -> LeaseState | None:
    """Who holds lease ``name`` and until when (possibly already expired), or None."""
    with store.transaction() as session:
        row = session.execute(
            select(Lease.holder, Lease.expires_at).where(Lease.name == name)
        ).first()
    if row is None:
        return None
    expires = row.expires_at
    if expires.tzinfo is None:  # SQLite keeps no zone; every value written is UTC.
        expires = expires.replace(tzinfo=UTC)
    return LeaseState(row.holder, expires)
