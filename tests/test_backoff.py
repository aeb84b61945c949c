"""The pure retry-delay function: doubling, cap, jitter bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailgate.core.backoff import compute_backoff


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (4, 4.0, 8.0), (10, 150.0, 300.0)],
)
def test_ceiling_doubles_until_the_cap(attempt: int, low: float, high: float) -> None:
    """With jitter at its ends, the delay spans the upper half of base * 2**(attempt-1), capped."""
    assert compute_backoff(attempt, base=1, cap=300, rand=lambda: 0.0) == low
    assert compute_backoff(attempt, base=1, cap=300, rand=lambda: 1.0) == high


def test_no_attempt_no_wait() -> None:
    """Attempt 0 (nothing failed yet) waits nothing."""
    assert compute_backoff(0, base=5, cap=60, rand=lambda: 0.5) == 0.0


@given(
    attempt=st.integers(min_value=1, max_value=10**9),
    base=st.floats(min_value=0.01, max_value=1000),
    cap=st.floats(min_value=0.01, max_value=10_000),
    r=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_delay_stays_within_half_ceiling_and_cap(
    attempt: int, base: float, cap: float, r: float
) -> None:
    """Never below half the ceiling (no hammering), never above the cap, even after weeks."""
    ceiling = min(cap, base * 2 ** min(attempt - 1, 62))
    delay = compute_backoff(attempt, base=base, cap=cap, rand=lambda: r)
    assert ceiling / 2 <= delay <= ceiling <= cap
