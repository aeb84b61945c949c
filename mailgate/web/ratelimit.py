"""Fixed-window rate limits counted in the database, so every web process shares them."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailgate.db.models import RateLimitHit

HOUR = timedelta(hours=1)


def bucket(kind: str, value: str) -> str:
    """A bucket name that does not store the address or IP itself."""
    return f"{kind}:{hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]}"


def used(session: Session, name: str, at: datetime, window: timedelta = HOUR) -> int:
    """Attempts counted in bucket ``name`` during the window ending at ``at``."""
    return (
        session.scalar(
            select(func.count(RateLimitHit.id)).where(
                RateLimitHit.bucket == name, RateLimitHit.at > at - window
            )
        )
        or 0
    )


def over(session: Session, limits: dict[str, int], at: datetime) -> bool:
    """True when any bucket in ``limits`` (name → allowed per hour) is used up."""
    return any(used(session, name, at) >= allowed for name, allowed in limits.items())


def record(session: Session, names: list[str], at: datetime, window: timedelta = HOUR) -> None:
    """Count one attempt in each bucket; attempts older than the window are forgotten, so the
    table holds at most an hour of attempts."""
    session.execute(delete(RateLimitHit).where(RateLimitHit.at <= at - window))
    for name in names:
        session.add(RateLimitHit(bucket=name, at=at))
    session.flush()
