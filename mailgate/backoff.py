"""When to try a temporarily failed delivery again. Pure: the clock is a parameter."""

from __future__ import annotations

from datetime import datetime, timedelta

BASE_SECONDS = 60
CAP_SECONDS = 6 * 3600


def next_attempt(
    attempts: int, now: datetime, *, base: int = BASE_SECONDS, cap: int = CAP_SECONDS
) -> datetime:
    """Exponential backoff after ``attempts`` failed tries: 1, 2, 4, ... minutes, capped
    at six hours (an MTA's queue lifetime is days; a notice need not hammer a smarthost)."""
    exponent = max(0, min(attempts - 1, 30))
    return now + timedelta(seconds=min(cap, base * 2**exponent))
