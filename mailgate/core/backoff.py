"""Retry delays: pure functions of the attempt number (and the clock, passed in)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

BASE_SECONDS = 60
CAP_SECONDS = 6 * 3600


def compute_backoff(attempt: int, *, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    The ceiling doubles from ``base`` up to ``cap``; the delay is drawn from its
    upper half ("equal jitter"), so it never drops to zero (no hammering) and
    pollers that lost the same server do not all come back in the same second.
    ``rand`` returns a float in [0, 1), e.g. ``random.random``.
    """
    if attempt < 1:
        return 0.0
    # Cap the exponent first: 2**attempt overflows a float long before attempt
    # stops growing on a server that stays down for weeks.
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 62))
    half = ceiling / 2
    return half + half * rand()


def next_attempt(
    attempts: int, now: datetime, *, base: int = BASE_SECONDS, cap: int = CAP_SECONDS
) -> datetime:
    """When to retry a notice after ``attempts`` failed tries: 1, 2, 4, ... minutes, capped
    at six hours (an MTA's queue lifetime is days; a notice need not hammer a smarthost)."""
    exponent = max(0, min(attempts - 1, 30))
    return now + timedelta(seconds=min(cap, base * 2**exponent))
