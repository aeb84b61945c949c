"""SLA targets and ticket dates, the pure core: which events are due, and the
dates agents type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailgate.core import sla
from mailgate.core.errors import InvalidValue
from mailgate.core.settings import SlaSettings

TARGETS = SlaSettings(first_response_minutes={"Normal": 60}, resolution_minutes={"Normal": 240})
T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def _clock(**kw: Any) -> sla.TicketClock:
    return sla.TicketClock(**{"priority": "Normal", "created_at": T0, "closed": False, **kw})


@pytest.mark.parametrize(
    ("ticket", "minutes", "expected"),
    [
        (_clock(), 59, []),
        (_clock(), 60, [("first_response", 60)]),
        (_clock(), 240, [("first_response", 60), ("resolution", 240)]),
        (_clock(first_response_at=T0 + timedelta(minutes=5)), 240, [("resolution", 240)]),
        (_clock(closed=True), 10_000, []),
        (_clock(priority="Low"), 10_000, []),
        (_clock(priority="Low", follow_up_at=T0 + timedelta(minutes=30)), 29, []),
        (
            _clock(
                priority="Low",
                follow_up_at=T0 + timedelta(minutes=30),
                action_required_at=T0 + timedelta(minutes=45),
            ),
            45,
            [("follow_up", 30), ("action_required", 45)],
        ),
        (_clock(closed=True, follow_up_at=T0), 10, []),
    ],
)
def test_due_events(ticket: sla.TicketClock, minutes: int, expected: list[Any]) -> None:
    """Targets count from creation per priority; dates fire when reached; closed: nothing."""
    targets = sla.Targets.from_settings(TARGETS)
    events = sla.due_events(ticket, targets, T0 + timedelta(minutes=minutes))
    assert [(e.kind, int((e.due_at - T0).total_seconds() // 60)) for e in events] == expected
    assert all(e.breached == (e.kind in sla.BREACH_KINDS) for e in events)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("none", None),
        ("30m", T0 + timedelta(minutes=30)),
        ("4h", T0 + timedelta(hours=4)),
        ("2d", T0 + timedelta(days=2)),
        ("1w", T0 + timedelta(weeks=1)),
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01-31T14:00", datetime(2026, 1, 31, 14, 0, tzinfo=UTC)),
        ("2026-01-31T14:00:09.5+01:00", datetime(2026, 1, 31, 13, 0, 9, tzinfo=UTC)),
    ],
)
def test_parse_when(text: str, expected: datetime | None) -> None:
    assert sla.parse_when(text, T0) == expected


@pytest.mark.parametrize("text", ["", "tomorrow", "2h30", "-1d", "2026-02-30", "5y"])
def test_parse_when_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(InvalidValue, match="cannot read"):
        sla.parse_when(text, T0)
