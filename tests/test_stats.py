"""`mailgate stats`: open counts and response/resolution times from history at fixed times."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result

from mailgate.db import reports, stats
from mailgate.tickets import changes, messages
from mailgate.tickets.actors import Actor
from tests.conftest import SECRET
from tests.web_support import Site, make_site

ANN = Actor("ann@example.com", "ann@example.com", "Ann")
HOUR = 3600.0


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    """Three tickets made through the mail path at 09:30, then worked at fixed times."""
    site = make_site(db_url)
    n = site.numbers
    start = site.clock()
    with site.store.transaction() as session:
        s = site.settings
        for number, hours in ((n["carol"], 1), (n["dave"], 3)):
            at = start + timedelta(hours=hours)
            messages.reply(session, settings=s, number=number, actor=ANN, body="On it.", at=at)
        changes.close(
            session, settings=s, number=n["carol"], actor=ANN, at=start + timedelta(hours=5)
        )
        changes.assign(
            session,
            settings=s,
            number=n["eve"],
            actor=ANN,
            assignee="bob@example.com",
            at=start + timedelta(hours=6),
        )
    yield site
    site.store.engine.dispose()


def compute(site: Site, days_later: int, since_days: int) -> dict[str, object]:
    with site.store.transaction() as session:
        return stats.compute(
            session,
            settings=site.settings,
            now=site.clock() + timedelta(days=days_later),
            since_days=since_days,
        )


def test_open_tickets_by_status_type_priority_and_assignee(site: Site) -> None:
    """Closed tickets are not open; the rest are counted by each field, unassigned by name."""
    result = compute(site, 1, 30)
    assert result["open"] == {
        "total": 2,
        "by_status": {"New": 1, "Open": 1},
        "by_type": {"General": 2},
        "by_priority": {"Normal": 2},
        "by_assignee": {"bob@example.com": 1, "unassigned": 1},
        "by_customer": {"Acme": 1, "Globex": 1},
        "by_team": {"support": 2},
    }


def test_first_response_and_resolution_median_and_p90(site: Site) -> None:
    """Responses after 1h and 3h give median 2h, p90 3h; one ticket closed after 5h."""
    result = compute(site, 1, 30)
    assert result["first_response"] == {
        "count": 2,
        "median_seconds": 2 * HOUR,
        "p90_seconds": 3 * HOUR,
    }
    assert result["resolution"] == {
        "count": 1,
        "median_seconds": 5 * HOUR,
        "p90_seconds": 5 * HOUR,
    }


def test_times_outside_the_period_are_left_out(site: Site) -> None:
    """Ten days later, a 7-day period holds no responses; open counts stay as of now."""
    result = compute(site, 10, 7)
    assert result["first_response"] == stats.summary([])
    assert result["resolution"]["count"] == 0
    assert result["open"]["total"] == 2  # type: ignore[index]


def test_p90_is_nearest_rank() -> None:
    """p90 of 1..10 is 9, of 1..20 is 18, of one value that value."""
    assert stats.p90([float(x) for x in range(10, 0, -1)]) == 9.0
    assert stats.p90([float(x) for x in range(1, 21)]) == 18.0
    assert stats.p90([7.0]) == 7.0


def test_the_real_command_prints_json_and_text(
    site: Site, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    """`mailgate stats --json --since DAYS` and the text form read the same database."""
    (tmp_path / "mailgate.toml").write_text(
        f'[database]\nurl = "{site.settings.database.url}"\n[security]\nsecret = "{SECRET}"\n'
    )
    wide = cli("stats", "--json", "--since", "100000")
    assert wide.exit_code == 0, wide.output
    data = json.loads(wide.output)
    assert data["since_days"] == 100000
    assert data["first_response"]["median_seconds"] == 2 * HOUR
    assert data["open"]["by_status"] == {"New": 1, "Open": 1}
    text = cli("stats", "--since", "100000")
    assert "Open tickets: 2" in text.output
    assert "first response  median 2h 00m, p90 3h 00m (2 tickets)" in text.output
    assert cli("stats", "--since", "0").exit_code == 2
    globex = cli("stats", "--json", "--since", "100000", "--customer", "Globex")
    assert globex.exit_code == 0, globex.output
    narrowed = json.loads(globex.output)
    assert (narrowed["customer"], narrowed["opened"]["total"]) == ("Globex", 1)
    assert narrowed["opened"]["by_customer"] == {"Globex": 1}
    unknown = cli("stats", "--team", "nosuch")
    assert (unknown.exit_code, unknown.output) == (1, "mailgate: no team 'nosuch'\n")


def test_opened_in_the_period_and_the_per_day_series(site: Site) -> None:
    """Day 0 opened three tickets (Acme 2, Globex 1), answered two (1h and 3h) and
    closed one; counted back from two days later, the backlog is two from day 0 on and
    none the day before."""
    result = compute(site, 2, 3)
    assert result["opened"] == {
        "total": 3,
        "by_customer": {"Acme": 2, "Globex": 1},
        "by_team": {"support": 3},
        "by_type": {"General": 3},
        "by_priority": {"Normal": 3},
    }
    day0 = site.clock().date()
    assert result["daily"] == [
        {
            "date": (day0 + timedelta(days=d)).isoformat(),
            "opened": 3 if d == 0 else 0,
            "closed": 1 if d == 0 else 0,
            "backlog": 0 if d < 0 else 2,  # none before they were opened
            "first_response_median_seconds": 2 * HOUR if d == 0 else None,
        }
        for d in range(-1, 3)
    ]


def test_the_per_day_series_as_csv(site: Site, tmp_path: Path, cli: Callable[..., Result]) -> None:
    """`mailgate stats --csv`: a header and one line per day, up to today."""
    (tmp_path / "mailgate.toml").write_text(
        f'[database]\nurl = "{site.settings.database.url}"\n[security]\nsecret = "{SECRET}"\n'
    )
    result = cli("stats", "--csv", "--since", "100000")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "date,opened,closed,backlog,first_response_median_seconds"
    assert len(lines) == 1 + reports.MAX_DAYS  # a long period: its last year
    day0 = site.clock().date().isoformat()
    assert f"{day0},3,1,2,7200.0" in lines
    assert cli("stats", "--csv", "--json").exit_code == 2
