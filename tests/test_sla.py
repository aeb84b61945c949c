"""SLA targets and ticket dates: each due event fires once, on a clock the test moves.

The tickets come through the real mail path into a real database (SQLite file, and
PostgreSQL where it runs); the check is the one the worker runs.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from mailgate.core.errors import ActionRefused, InvalidValue
from mailgate.core.settings import SlaSettings
from mailgate.db import stats
from mailgate.db.models import HistoryEvent, Notice, SlaEvent, Ticket
from mailgate.tickets import changes, messages, sla_check
from mailgate.tickets.actors import Actor
from tests.mail import build
from tests.web_support import Site, make_site

ANN = Actor("ann@example.com", "ann@example.com", "Ann")
TARGETS = SlaSettings(first_response_minutes={"Normal": 60}, resolution_minutes={"Normal": 240})


# --- the check on a real database ----------------------------------------------------


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    """Three Normal tickets opened at 09:30 (carol, dave, eve); carol's is Ann's."""
    site = make_site(db_url)
    site.settings = dataclasses.replace(site.settings, sla=TARGETS)
    with site.store.transaction() as session:
        changes.assign(
            session,
            settings=site.settings,
            number=site.numbers["carol"],
            actor=Actor("cli"),
            assignee="ann@example.com",
            at=site.clock(),
        )
        site.notice_baseline = session.scalar(select(func.max(Notice.id))) or 0
    yield site
    site.store.engine.dispose()


def check(site: Site, **later: float) -> list[tuple[int, str]]:
    at = site.clock() + timedelta(**later)
    report = sla_check.run_check(site.store, site.settings, at)
    return sorted((f.number, f.kind) for f in report.fired)


def sla_history(site: Site, number: int) -> list[tuple[str, str]]:
    with site.store.transaction() as session:
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
        return [
            (e.action, e.field)
            for e in session.scalars(
                select(HistoryEvent)
                .where(HistoryEvent.ticket_id == ticket_id, HistoryEvent.actor == "sla")
                .order_by(HistoryEvent.id)
            )
        ]


def test_target_fires_once_after_it_passes(site: Site) -> None:
    """Before the target nothing; after it one event per ticket, one history entry each,
    one reminder to the assignee (the unassigned ones get none); then nothing again."""
    n = site.numbers
    assert check(site, minutes=59) == []
    assert site.notices("reminder") == []
    fired = check(site, minutes=61)
    assert fired == sorted((n[who], "first_response") for who in ("carol", "dave", "eve"))
    reminders = site.notices("reminder")
    assert [(r.recipient, r.ticket_id, r.state) for r in reminders] == [
        ("ann@example.com", n["carol"], "pending")
    ]
    assert reminders[0].detail == {
        "due": "first_response",
        "due_at": (site.clock() + timedelta(minutes=60)).isoformat(),
    }
    for who in ("carol", "dave", "eve"):
        assert sla_history(site, n[who]) == [("sla_breached", "first_response")]
    assert check(site, minutes=61) == []
    assert check(site, minutes=200) == []
    assert len(site.notices("reminder")) == 1
    assert check(site, minutes=240) == sorted(
        (n[who], "resolution") for who in ("carol", "dave", "eve")
    )
    assert len(site.notices("reminder")) == 2
    assert check(site, days=30) == []


def test_answered_and_closed_tickets(site: Site) -> None:
    """An answered ticket misses no first-response target; a closed one never fires."""
    n, s = site.numbers, site.settings
    with site.store.transaction() as session:
        messages.reply(
            session,
            settings=s,
            number=n["dave"],
            actor=ANN,
            body="On it.",
            at=site.clock() + timedelta(minutes=30),
        )
        changes.close(
            session, settings=s, number=n["eve"], actor=ANN, at=site.clock() + timedelta(minutes=1)
        )
    assert check(site, hours=5) == sorted(
        [(n["carol"], "first_response"), (n["carol"], "resolution"), (n["dave"], "resolution")]
    )
    assert sla_history(site, n["eve"]) == []


def test_a_target_met_late_between_two_passes_is_still_a_breach(site: Site) -> None:
    """A first reply or a closing after the target, before any pass saw it, records the
    breach at once (history, counted) with no reminder; the next pass fires nothing
    more for it. A reply in time records nothing."""
    n, s = site.numbers, site.settings
    with site.store.transaction() as session:
        for who, minutes in (("carol", 90), ("dave", 30)):
            messages.reply(
                session,
                settings=s,
                number=n[who],
                actor=ANN,
                body="On it.",
                at=site.clock() + timedelta(minutes=minutes),
            )
        changes.close(
            session, settings=s, number=n["eve"], actor=ANN, at=site.clock() + timedelta(hours=5)
        )
    assert sla_history(site, n["carol"]) == [("sla_breached", "first_response")]
    assert sla_history(site, n["dave"]) == []
    assert sla_history(site, n["eve"]) == [
        ("sla_breached", "first_response"),
        ("sla_breached", "resolution"),
    ]
    assert site.notices("reminder") == []
    assert check(site, minutes=100) == []  # carol's first response is recorded already
    assert check(site, hours=5) == sorted([(n["carol"], "resolution"), (n["dave"], "resolution")])
    with site.store.transaction() as session:
        counted = stats.compute(
            session, settings=s, now=site.clock() + timedelta(hours=6), since_days=1
        )
    assert counted["sla"]["breaches"] == {"first_response": 2, "resolution": 3, "total": 5}


def test_a_late_reply_between_read_and_fire_is_respected(site: Site) -> None:
    """The pass rereads the ticket, locked, before firing: an answer in between wins."""
    n = site.numbers
    at = site.clock() + timedelta(minutes=90)
    with site.store.transaction() as session:
        due = sla_check.pending(session, site.settings, at)
    assert sorted(due.values()) == sorted(n.values())
    with site.store.transaction() as session:
        messages.reply(
            session, settings=site.settings, number=n["carol"], actor=ANN, body="Hi.", at=at
        )
    carol_id = next(i for i, number in due.items() if number == n["carol"])
    with site.store.transaction() as session:
        assert sla_check.fire_ticket(session, carol_id, site.settings, at) == []


def test_an_event_already_stored_is_skipped(site: Site) -> None:
    """Two passes that both saw the event due: the second insert is skipped, not an error,
    and writes no history and no notice."""
    at = site.clock() + timedelta(minutes=61)
    with site.store.transaction() as session:
        ticket_id = next(iter(sla_check.pending(session, site.settings, at)))
    with site.store.transaction() as session:
        first = sla_check.fire_ticket(session, ticket_id, site.settings, at)
    with site.store.transaction() as session:
        second = sla_check.fire_ticket(session, ticket_id, site.settings, at)
    assert [f.kind for f in first] == ["first_response"] and second == []


def test_concurrent_passes_fire_each_event_once(site: Site) -> None:
    """Four passes at once over 23 tickets: every event stored once, one reminder each."""
    for i in range(20):
        site.ingest(_mail(i))
    with site.store.transaction() as session:
        session.execute(Ticket.__table__.update().values(assignee_id=None))
        ann = site.settings.agents[0].email
        changes.assign(
            session,
            settings=site.settings,
            number=site.numbers["dave"],
            actor=ANN,
            assignee=ann,
            at=site.clock(),
        )
    at = site.clock() + timedelta(minutes=61)
    start = threading.Barrier(4)
    results: list[list[tuple[int, str]]] = []
    errors: list[BaseException] = []

    def one_pass() -> None:
        start.wait()
        try:
            report = sla_check.run_check(site.store, site.settings, at)
            results.append([(f.number, f.kind) for f in report.fired])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one_pass) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    fired = [event for result in results for event in result]
    assert len(fired) == len(set(fired)) == 23
    with site.store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SlaEvent)) == 23
        history = session.scalar(
            select(func.count()).select_from(HistoryEvent).where(HistoryEvent.actor == "sla")
        )
        assert history == 23
    # Only the one assigned ticket gets a reminder; the others have no one to tell.
    assert [r.ticket_id for r in site.notices("reminder")] == [site.numbers["dave"]]


def _mail(i: int) -> bytes:
    return build(sender=f"c{i}@acme.test", subject=f"Issue {i}", message_id=f"<c{i}@acme.test>")


def test_moving_a_date_fires_again(site: Site) -> None:
    """A follow-up date fires once when reached; moved, it is a new due event; cleared,
    nothing; a closed ticket refuses dates."""
    n, s = site.numbers, site.settings
    number = n["carol"]
    quiet = dataclasses.replace(s, sla=SlaSettings())  # dates only, no targets
    site.settings = quiet

    def set_follow_up(at: datetime | None, now: datetime) -> None:
        with site.store.transaction() as session:
            changes.set_dates(
                session,
                settings=quiet,
                number=number,
                actor=ANN,
                dates={"follow_up": at},
                at=now,
            )

    t = site.clock()
    set_follow_up(t + timedelta(hours=2), t)
    assert check(site, hours=1) == []
    assert check(site, hours=2) == [(number, "follow_up")]
    assert check(site, hours=3) == []
    set_follow_up(t + timedelta(hours=5), t + timedelta(hours=3))
    assert check(site, hours=4) == []
    assert check(site, hours=6) == [(number, "follow_up")]
    assert sla_history(site, number) == [("date_reached", "follow_up")] * 2
    assert [r.detail["due"] for r in site.notices("reminder")] == ["follow_up"] * 2
    set_follow_up(None, t + timedelta(hours=7))
    assert check(site, days=3) == []
    with pytest.raises(InvalidValue, match="is past"):
        set_follow_up(t, t + timedelta(hours=8))
    with site.store.transaction() as session:
        changes.close(session, settings=quiet, number=number, actor=ANN, at=t)
    with pytest.raises(ActionRefused, match="closed"):
        set_follow_up(t + timedelta(days=9), t + timedelta(hours=8))


def test_disabled_check_fires_nothing(site: Site) -> None:
    """sla.enabled = false: the worker's pass does nothing."""
    from mailgate.jobs.sla_job import check_once
    from mailgate.jobs.tasks import Runtime

    later = site.clock() + timedelta(days=1)
    off = dataclasses.replace(site.settings, sla=dataclasses.replace(TARGETS, enabled=False))
    assert check_once(Runtime(site.store, off, lambda: later)) == []
    on = Runtime(site.store, site.settings, lambda: later)
    assert len(check_once(on)) == 2  # carol's first response and resolution


def test_stats_count_breaches_and_open_tickets_in_breach(site: Site) -> None:
    """stats: breaches recorded in the period by kind; open tickets missing a target now."""
    n = site.numbers
    with site.store.transaction() as session:
        messages.reply(
            session,
            settings=site.settings,
            number=n["dave"],
            actor=ANN,
            body="On it.",
            at=site.clock() + timedelta(minutes=10),
        )
    check(site, minutes=90)
    at = site.clock() + timedelta(minutes=100)
    with site.store.transaction() as session:
        result = stats.compute(session, settings=site.settings, now=at, since_days=1)
    assert result["sla"] == {
        "breaches": {"first_response": 2, "resolution": 0, "total": 2},
        "open_in_breach": {"first_response": 2, "resolution": 0, "total": 2},
    }
    with site.store.transaction() as session:
        later = stats.compute(
            session, settings=site.settings, now=at + timedelta(days=3), since_days=1
        )
    # Out of the period, the breaches no longer count; the open tickets still miss both.
    assert later["sla"] == {
        "breaches": {"first_response": 0, "resolution": 0, "total": 0},
        "open_in_breach": {"first_response": 2, "resolution": 3, "total": 3},
    }


def test_agent_page_shows_due_times(site: Site) -> None:
    """The agent's ticket page lists the SLA due times and the dates an agent set."""
    from mailgate.web.app import create_app
    from tests.web_support import sign_in_agent

    site.app = create_app(site.settings, site.store, now=site.clock)  # with the targets
    with site.store.transaction() as session:
        changes.set_dates(
            session,
            settings=site.settings,
            number=site.numbers["carol"],
            actor=ANN,
            dates={"action_required": site.clock() + timedelta(days=2)},
            at=site.clock(),
        )
    page = sign_in_agent(site).get(f"/tickets/{site.numbers['carol']}").text
    assert "First response due</dt><dd><time" in page
    assert ">Jan 5, 2026, 10:30\u202fAM UTC</time>" in page
    assert ">Jan 5, 2026, 1:30\u202fPM UTC</time>" in page
    assert "Action required</dt><dd><time" in page and ">Jan 7, 2026, 9:30\u202fAM UTC<" in page
    assert "Follow-up</dt>" not in page


def test_agent_sets_and_clears_dates_from_the_ticket_page(site: Site) -> None:
    """The page's date form takes the CLI's words; a blank field is left as is, `none`
    clears, an unreadable or past date is a 400 naming what was expected."""
    from mailgate.web.app import create_app
    from tests.web_support import form, sign_in_agent

    site.app = create_app(site.settings, site.store, now=site.clock)
    number = site.numbers["carol"]
    client, page = sign_in_agent(site), f"/tickets/{number}"
    path = f"/agent/tickets/{number}/dates"
    done = form(client, path, page, follow_up="2d", action_required="")
    assert done.status_code == 303
    done = form(client, path, page, follow_up="", action_required="2026-01-08T12:00")
    assert done.status_code == 303
    with site.store.transaction() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert ticket.follow_up_at == site.clock() + timedelta(days=2)
        assert ticket.action_required_at == datetime(2026, 1, 8, 12, 0, tzinfo=UTC)
    refused = form(client, path, page, follow_up="tomorrow")
    assert refused.status_code == 400 and "cannot read" in refused.text
    assert form(client, path, page, follow_up="2020-01-01").status_code == 400
    assert form(client, path, page, follow_up="none").status_code == 303
    with site.store.transaction() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert ticket.follow_up_at is None
        assert ticket.action_required_at is not None
        changes = [
            (e.actor, e.field, bool(e.old), bool(e.new))
            for e in session.scalars(
                select(HistoryEvent)
                .where(HistoryEvent.ticket_id == ticket.id, HistoryEvent.action == "date")
                .order_by(HistoryEvent.id)
            )
        ]
    assert changes == [
        ("ann@example.com", "follow_up", False, True),
        ("ann@example.com", "action_required", False, True),
        ("ann@example.com", "follow_up", True, False),
    ]
