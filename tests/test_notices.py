"""Which notices an event produces, and which stay unsent: the pure decision as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailgate.core import notices as n
from mailgate.core.notices import Event, NoticeContext, choose_language, decide, over_rate_limit

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
ALICE, ANN = "alice@customer.test", "ann@example.com"


def _event(kind: str, requester: str = ALICE, **kw: str) -> Event:
    return Event(kind=kind, cause="e:1", ticket_number=7, requester=requester, **kw)


CASES = [
    # (event, context overrides, [(kind, recipient, suppressed?)])
    (_event(n.NEW_TICKET, sender=ALICE), {}, [("acknowledgement", ALICE, False)]),
    (
        _event(n.NEW_TICKET, sender=ALICE, assignee=ANN),
        {},
        [("acknowledgement", ALICE, False), ("assigned", ANN, False)],
    ),
    (_event(n.NEW_TICKET, sender=ALICE), {"answerable": False}, [("acknowledgement", ALICE, True)]),
    (
        _event(n.NEW_TICKET, sender=ALICE, assignee=ANN),
        {"answerable": False},
        [("acknowledgement", ALICE, True), ("assigned", ANN, False)],
    ),
    (
        _event(n.NEW_TICKET, sender=ALICE, assignee=ANN),
        {"automatic": True, "answerable": False},
        [("acknowledgement", ALICE, True), ("assigned", ANN, True)],
    ),
    (_event(n.CUSTOMER_REPLY, sender=ALICE), {}, []),
    (_event(n.CUSTOMER_REPLY, sender=ALICE, assignee=ANN), {}, [("customer_replied", ANN, False)]),
    (_event(n.CUSTOMER_REPLY, sender=ANN, assignee=ANN), {}, []),
    (
        _event(n.MESSAGE_TO_CLOSED, sender="bob@customer.test", assignee=ANN),
        {},
        [("closed_ticket", "bob@customer.test", False)],
    ),
    (_event(n.AGENT_REPLY, assignee=ANN), {"answerable": False}, [("agent_replied", ALICE, False)]),
    (_event(n.STATUS_CHANGE, status="Waiting"), {}, [("status_changed", ALICE, False)]),
    (_event(n.ASSIGNMENT, assignee=ANN), {}, [("assigned", ANN, False)]),
    (_event(n.ASSIGNMENT), {}, []),
    (
        _event(n.NEW_TICKET, requester="support@example.com"),
        {},
        [("acknowledgement", "support@example.com", True)],
    ),
]


@pytest.mark.parametrize(("event", "overrides", "expected"), CASES)
def test_decide(event: Event, overrides: dict, expected: list) -> None:  # type: ignore[type-arg]
    """Each event yields its notices; invariant 5 suppresses, never drops, answers."""
    ctx = NoticeContext(now=NOW, own_addresses=("support@example.com",), **overrides)
    specs = decide(event, ctx)
    assert [(s.kind, s.recipient, bool(s.suppressed)) for s in specs] == expected
    assert len({s.cause for s in specs}) == len(specs)


def test_rate_limit_is_a_window_over_counts() -> None:
    """Five notices in the last hour block the sixth; older ones do not count."""
    recent = [NOW - timedelta(minutes=m) for m in (1, 10, 20, 30, 59)]
    assert over_rate_limit(recent, now=NOW, limit=5)
    assert not over_rate_limit(recent[:4], now=NOW, limit=5)
    assert not over_rate_limit([NOW - timedelta(minutes=61)] * 9, now=NOW, limit=5)
    ctx = NoticeContext(now=NOW, recent={ALICE: recent})
    (spec,) = decide(_event(n.NEW_TICKET, sender=ALICE), ctx)
    assert spec.suppressed.startswith("rate limit")
    (agent,) = decide(_event(n.AGENT_REPLY), ctx)
    assert agent.suppressed == ""  # a person's reply is not automatic mail


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        (("fr", "de"), "fr"),
        (("", "es-ES"), "es"),
        (("", ""), "en"),
        (("../../etc", "pt_BR"), "pt"),
        (("x" * 9, ""), "en"),
    ],
)
def test_language_choice(candidates: tuple[str, str], expected: str) -> None:
    """Customer account, else the message's Content-Language, else the default; never junk."""
    assert choose_language(*candidates, default="en") == expected
