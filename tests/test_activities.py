"""Activities (issue 22, item 5): agents log time on a ticket by type; `mailgate stats`
sums it by type, agent, customer account and ticket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mailgate.db import stats
from mailgate.db.models import Notice
from mailgate.tickets.activities import MAX_MINUTES, log_activity
from mailgate.tickets.actors import Actor
from tests.test_ticket_cli import Cli, desk, show  # noqa: F401 - desk is a fixture
from tests.web_support import Site, make_site

ANN = Actor("ann@example.com", "ann@example.com", "Ann")
BOB = Actor("bob@example.com", "bob@example.com", "Bob")


def test_cli_logs_time_with_its_history_and_refuses_nonsense(desk: Cli) -> None:  # noqa: F811
    logged = desk(
        "tickets", "activity", "1", "--type", "Call", "--minutes", "25", "--as", "ann@example.com"
    )
    assert logged.exit_code == 0, logged.output
    assert "ticket #1: activity 1 logged (Call, 25 min)" in logged.output
    event = show(desk, 1)["history"][-1]
    assert (event["actor"], event["action"], event["detail"]) == (
        "ann@example.com",
        "activity",
        {"type": "Call", "minutes": "25"},
    )
    listed = desk("tickets", "show", "1")
    assert "Time logged:" in listed.output and "ann@example.com  Call 25 min" in listed.output
    assert show(desk, 1)["activities"][0]["minutes"] == 25
    unknown = desk("tickets", "activity", "1", "--type", "Nap", "--minutes", "5")
    assert unknown.exit_code == 1 and "unknown activity type 'Nap' (known: Call" in unknown.output
    too_long = desk("tickets", "activity", "1", "--type", "Call", "--minutes", str(MAX_MINUTES + 1))
    assert too_long.exit_code == 1 and "minutes must be from 1" in too_long.output
    assert desk("tickets", "close", "2").exit_code == 0
    closed = desk("tickets", "activity", "2", "--type", "Call", "--minutes", "5")
    assert closed.exit_code == 1 and "is Closed" in closed.output


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    site = make_site(db_url)
    yield site
    site.store.engine.dispose()


def test_stats_sum_time_by_type_agent_account_and_ticket(site: Site) -> None:
    """Acme's two tickets and Globex's one; the period keeps only this week's work, and
    the internal text goes into no notice."""
    n, s = site.numbers, site.settings
    start = site.clock()
    with site.store.transaction() as session:
        notices_before = session.scalar(select(func.count()).select_from(Notice))
        for number, actor, type_, minutes, days_ago in (
            (n["carol"], ANN, "Call", 30, 1),
            (n["carol"], BOB, "Research", 90, 2),
            (n["dave"], ANN, "Call", 15, 3),
            (n["eve"], BOB, "Meeting", 60, 4),
            (n["eve"], BOB, "Meeting", 45, 40),  # outside the period
        ):
            log_activity(
                session,
                settings=s,
                number=number,
                actor=actor,
                type_=type_,
                minutes=minutes,
                text="internal: SECRET-ACTIVITY-TEXT",
                at=start - timedelta(days=days_ago),
            )
        assert session.scalar(select(func.count()).select_from(Notice)) == notices_before
    with site.store.transaction() as session:
        result = stats.compute(session, settings=s, now=start, since_days=7)
    assert result["activities"] == {
        "count": 4,
        "total_minutes": 195,
        "by_type": {"Call": 45, "Meeting": 60, "Research": 90},
        "by_agent": {"ann@example.com": 45, "bob@example.com": 150},
        "by_customer": {"Acme": 135, "Globex": 60},
        "by_ticket": {f"#{n['carol']}": 120, f"#{n['eve']}": 60, f"#{n['dave']}": 15},
    }
    assert "SECRET-ACTIVITY-TEXT" not in json.dumps(result)
