"""Exponential backoff with optional jitter: a pure function, the randomness passed in."""

from __future__ import annotations

import random
from collections.abc import Callable


def compute_backoff(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: float = 0.1,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped,
    then spread by ±``jitter`` (a fraction) so many clients do not retry in step."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    if jitter:
        delay *= 1 + jitter * (2 * rand() - 1)
    return max(0.0, min(cap, delay))
