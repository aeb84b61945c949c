"""Sliding-window rate limits counted in the database, so every web process shares them.

An attempt is recorded first and decided after, counting itself, while a lock serialises
every transaction of the same bucket: parallel requests cannot all pass a check that none
of them had been counted in yet. A refused attempt is taken back, so it does not count.

Why a log of hits under a per-bucket lock, rather than a counter row upserted with
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``: a counter is a fixed window (twice the
limit fits around the hour's edge, and the count falls to zero at once), and the agent
password rule needs more than a count: when an account last failed. The log keeps an exact
sliding hour and the time of every attempt, and an attempt can be taken back by its row
(a refused one, or a password that was right). The lock is taken in the deciding
transaction only, which the callers keep short: never across a password hash.

- PostgreSQL: ``pg_advisory_xact_lock`` on a 64-bit key of each bucket, in sorted order (so
  two transactions locking two buckets cannot deadlock), held until commit. Under READ
  COMMITTED, mailgate's isolation, each later statement sees every earlier holder's hits.
  A bucket with no row yet is locked as well, which ``SELECT ... FOR UPDATE`` cannot do.
- SQLite: the hits are inserted before anything is read. pysqlite opens the transaction
  at that first write, which takes the database's one write lock until commit, so the
  count that follows sees every committed hit and no other writer can add one meanwhile.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailgate.core.settings import WebSettings
from mailgate.db.models import RateLimitHit

HOUR = timedelta(hours=1)
# Old hits one decision forgets at most; each adds two, so the table keeps up.
_SWEEP_BATCH = 500
# 2**16 seconds is past any allowed web.password_delay_max_seconds.
_MAX_DOUBLINGS = 16


def bucket(kind: str, value: str) -> str:
    """A bucket name that does not store the address or IP itself."""
    return f"{kind}:{hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]}"


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def record(session: Session, names: Sequence[str], at: datetime) -> list[RateLimitHit]:
    """Count one attempt in each bucket of ``names`` before deciding anything; until this
    transaction ends, no other can count in those buckets. Call it first in its transaction
    (on SQLite its insert is what takes the write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        for name in sorted(set(names)):
            session.execute(select(func.pg_advisory_xact_lock(_lock_key(name))))
    hits = [RateLimitHit(bucket=name, at=at) for name in names]
    session.add_all(hits)
    session.flush()
    # Attempts older than the window are forgotten, so the table holds about an hour of
    # them. SKIP LOCKED: two sweeps never wait for each other's rows, so never deadlock.
    old = (
        select(RateLimitHit.id)
        .where(RateLimitHit.at <= at - HOUR)
        .limit(_SWEEP_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        delete(RateLimitHit).where(RateLimitHit.id.in_(old)),
        execution_options={"synchronize_session": False},
    )
    return hits


def forget(session: Session, hit_ids: Iterable[int]) -> None:
    """Take back attempts ``record`` counted: a refused one, or a password that was right."""
    ids = list(hit_ids)
    if ids:
        session.execute(
            delete(RateLimitHit).where(RateLimitHit.id.in_(ids)),
            execution_options={"synchronize_session": False},
        )


def times(
    session: Session, name: str, at: datetime, *, besides: Iterable[int] = ()
) -> list[datetime]:
    """When the attempts counted in bucket ``name`` during the hour ending at ``at`` were
    made, oldest first, leaving out the hits ``besides``."""
    return list(
        session.scalars(
            select(RateLimitHit.at)
            .where(
                RateLimitHit.bucket == name,
                RateLimitHit.at > at - HOUR,
                RateLimitHit.id.not_in(list(besides)),
            )
            .order_by(RateLimitHit.at)
        )
    )


def used(session: Session, name: str, at: datetime) -> int:
    """Attempts counted in bucket ``name`` during the hour ending at ``at``."""
    return (
        session.scalar(
            select(func.count(RateLimitHit.id)).where(
                RateLimitHit.bucket == name, RateLimitHit.at > at - HOUR
            )
        )
        or 0
    )


def take(session: Session, limits: dict[str, int], at: datetime) -> bool:
    """Count one attempt in every bucket of ``limits`` (name → attempts allowed per hour)
    and return True, or, if that puts any bucket over, count nothing and return False."""
    hits = record(session, list(limits), at)
    if any(used(session, name, at) > allowed for name, allowed in limits.items()):
        forget(session, [hit.id for hit in hits])
        return False
    return True


@dataclass(frozen=True)
class PasswordTurn:
    """Whether a client may have a password checked now, and the attempt as counted."""

    # The attempt's hits: a failure unless taken back (``forget``) when the password is right.
    hit_ids: tuple[int, ...] = ()
    refused: str = ""  # "" | "client": its address is over its limit | "account": slowed down
    retry_after: int = 0  # seconds, when refused


def password_turn(
    session: Session, *, account: str, client: str, web: WebSettings, at: datetime
) -> PasswordTurn:
    """Count an agent password attempt for ``account`` from ``client`` (both buckets) and
    decide, counting it, whether its password is checked. README, Portal and API, Security:

    - a client address with ``web.password_failures_per_ip_per_hour`` failures in the last
      hour is refused until the oldest of them is an hour old;
    - an account's failures only slow it down, never lock it: after
      ``web.password_failures_per_address_per_hour`` failures in the last hour, the n-th
      failure beyond them makes it wait 2**n seconds (at most
      ``web.password_delay_max_seconds``) after its latest attempt before another check,
      for clients that failed themselves in the last hour. A client address with no failure
      in the hour is never kept waiting by the account: an outsider hammering an agent's
      account from elsewhere does not stop that agent signing in from their own address.

    Attempts not yet answered count as failures, so parallel requests are decided one by one.
    """
    hits = record(session, [client, account], at)
    mine = [hit.id for hit in hits]
    by_client = times(session, client, at, besides=mine)
    allowed = web.password_failures_per_ip_per_hour
    if len(by_client) + 1 > allowed:
        forget(session, mine)
        # Its next turn comes when all but allowed - 1 of those failures are an hour old.
        oldest_to_go = by_client[len(by_client) - allowed]
        return PasswordTurn(refused="client", retry_after=_seconds(oldest_to_go + HOUR - at))
    clean = not by_client  # no failure from this address in the hour
    failures, latest = session.execute(
        select(func.count(RateLimitHit.id), func.max(RateLimitHit.at)).where(
            RateLimitHit.bucket == account,
            RateLimitHit.at > at - HOUR,
            RateLimitHit.id.not_in(mine),
        )
    ).one()
    beyond = failures - web.password_failures_per_address_per_hour
    if not clean and beyond >= 0 and latest is not None:
        delay = min(2 ** min(beyond, _MAX_DOUBLINGS), web.password_delay_max_seconds)
        until = latest + timedelta(seconds=delay)
        if at < until:
            forget(session, mine)
            return PasswordTurn(refused="account", retry_after=_seconds(until - at))
    return PasswordTurn(hit_ids=tuple(mine))


def _seconds(wait: timedelta) -> int:
    return max(1, math.ceil(wait.total_seconds()))
