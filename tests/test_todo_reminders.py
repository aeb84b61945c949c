"""An overdue to-do's assignee gets one content-free reminder from the SLA check, once
and only once: also when passes run at once, and when a second pass meets the first
one's claim before it committed. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailgate.core.settings import OutboundSettings
from mailgate.db.models import HistoryEvent, Notice, Todo
from mailgate.jobs.sla_job import check_once
from mailgate.jobs.tasks import Runtime
from mailgate.outbound.sender import send_pending
from mailgate.tickets import sla_check, todo_reminders
from mailgate.tickets.actors import Actor
from mailgate.tickets.todos import add_todo, mark_done
from tests.web_support import Site, make_site

ANN, BOB = "ann@example.com", "bob@example.com"
ME = Actor(ANN, ANN, "Ann", None)
SECRET_TITLE = "QZTODOSECRET call the lawyer"


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    s = make_site(db_url)
    s.settings = dataclasses.replace(
        s.settings, outbound=OutboundSettings(folder=str(tmp_path / "outbox"))
    )
    yield s
    s.store.engine.dispose()


def _add(site: Site, title: str, *, number: int | None = None, assignee: str | None = ANN,
         due_in: timedelta | None = timedelta(hours=1)) -> int:  # fmt: skip
    at = site.clock()
    with site.store.transaction() as session:
        todo = add_todo(
            session,
            settings=site.settings,
            actor=ME,
            title=title,
            at=at,
            number=number,
            assignee=assignee,
            due_at=at + due_in if due_in is not None else None,
        )
        return todo.id


def _check(site: Site, **later: float) -> list[tuple[int, int | None]]:
    report = sla_check.run_check(site.store, site.settings, site.clock() + timedelta(**later))
    assert len(report.notice_ids) == len([r for r in report.reminded if r.notice_id])
    return [(r.todo_id, r.number) for r in report.reminded]


def _reminders(site: Site) -> list[tuple[str, int | None, str]]:
    with site.store.transaction() as session:
        return [
            (n.recipient, n.ticket_id, n.state)
            for n in session.scalars(
                select(Notice).where(Notice.kind == "todo_reminder").order_by(Notice.id)
            )
        ]


def test_each_overdue_todo_reminds_its_assignee_once(site: Site) -> None:
    """Due, open, assigned: one reminder, at the first pass after its due time, never
    again; done ones, unassigned ones and ones without a date get none."""
    n = site.numbers["carol"]
    on_ticket = _add(site, SECRET_TITLE, number=n, assignee=BOB)
    alone = _add(site, "Renew the certificate", due_in=timedelta(hours=2))
    _add(site, "Nobody's", assignee=None)
    _add(site, "No date", due_in=None)
    finished = _add(site, "Done already")
    with site.store.transaction() as session:
        assert mark_done(session, todo_id=finished, actor=ME, at=site.clock())
    assert _check(site, minutes=59) == []
    assert _check(site, minutes=61) == [(on_ticket, n)]
    assert _check(site, minutes=62) == []
    assert _check(site, hours=3) == [(alone, None)]
    assert _check(site, days=30) == []
    with site.store.transaction() as session:
        ticket_id = session.scalar(select(Todo.ticket_id).where(Todo.id == on_ticket))
        events = [
            (e.actor, e.action, e.detail["todo"])
            for e in session.scalars(select(HistoryEvent).where(HistoryEvent.action == "todo_due"))
        ]
        reminded_at = session.scalar(select(Todo.reminded_at).where(Todo.id == on_ticket))
    assert _reminders(site) == [(BOB, ticket_id, "pending"), (ANN, None, "pending")]
    assert events == [("sla", "todo_due", str(on_ticket))]
    assert reminded_at == site.clock() + timedelta(minutes=61)
    # A to-do done before its reminder went out is not reminded afterwards.
    late = _add(site, "Done in time")
    with site.store.transaction() as session:
        mark_done(session, todo_id=late, actor=ME, at=site.clock())
    assert _check(site, hours=2) == []


def test_the_reminder_points_to_the_ticket_or_my_todos_and_never_quotes(site: Site) -> None:
    """The mail names the ticket (or links My to-dos) and when it was due, in the
    assignee's language; the title is nowhere in it."""
    n = site.numbers["dave"]
    _add(site, SECRET_TITLE, number=n, assignee=BOB)
    _add(site, SECRET_TITLE)
    assert len(_check(site, hours=2)) == 2
    site.clock.advance(hours=2)  # the reminders are due to be sent from the check's time
    report = send_pending(site.store, settings=site.settings, now=site.clock)
    assert report.sent >= 2 and report.failed == 0
    outbox = Path(site.settings.outbound.folder)
    with site.store.transaction() as session:
        ids = list(session.scalars(select(Notice.id).where(Notice.kind == "todo_reminder")))
    mails = {}
    for notice_id in ids:
        raw = (outbox / f"notice-{notice_id}.eml").read_bytes()
        message = message_from_bytes(raw, policy=policy.default)
        body = message.get_body(("plain",))
        assert body is not None
        mails[str(message["To"])] = (str(message["Subject"]), body.get_content(), raw)
    bob_subject, bob_text, bob_raw = mails[BOB]
    ann_subject, ann_text, ann_raw = mails[ANN]
    assert bob_subject == f"[#{n}] Reminder: a to-do is overdue"
    assert f"ticket [#{n}]" in bob_text and site.settings.ticket_url(n) in bob_text
    assert "was due at 2026-01-05 10:30 UTC" in bob_text
    assert ann_subject == "Reminder: a to-do is overdue"
    assert "http://testserver/agent/todos" in ann_text
    for raw in (bob_raw, ann_raw):
        assert b"QZTODOSECRET" not in raw and b"lawyer" not in raw


def test_concurrent_passes_remind_each_todo_once(site: Site) -> None:
    """Four passes at once over twenty overdue to-dos (ten on tickets): one reminder each."""
    numbers = list(site.numbers.values())
    made = [
        _add(
            site, f"Task {i}", number=numbers[i % 3] if i % 2 else None, assignee=(ANN, BOB)[i % 2]
        )
        for i in range(20)
    ]
    at = site.clock() + timedelta(hours=2)
    start = threading.Barrier(4)
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def one_pass() -> None:
        start.wait()
        try:
            report = sla_check.run_check(site.store, site.settings, at)
            results.append([r.todo_id for r in report.reminded])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one_pass) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    reminded = [todo_id for result in results for todo_id in result]
    assert sorted(reminded) == made
    with site.store.transaction() as session:
        count = session.scalar(
            select(func.count()).select_from(Notice).where(Notice.kind == "todo_reminder")
        )
    assert count == 20


@pytest.mark.parametrize("on_ticket", [False, True], ids=["standalone", "on_ticket"])
def test_a_second_pass_waits_for_the_first_claim_and_skips(site: Site, on_ticket: bool) -> None:
    """The claim and the notice commit together: a pass that meets an uncommitted claim
    waits for it, then finds the to-do reminded, so two passes never both remind. (A
    read first and a write after would both see reminded_at empty.)"""
    todo_id = _add(site, "Only once", number=site.numbers["eve"] if on_ticket else None)
    at = site.clock() + timedelta(hours=2)
    second: list[object] = []

    def other_pass() -> None:
        with site.store.transaction() as session:
            second.append(todo_reminders.remind(session, todo_id, site.settings, at))

    with site.store.transaction() as session:
        first = todo_reminders.remind(session, todo_id, site.settings, at)
        assert first is not None and first.notice_id is not None
        other = threading.Thread(target=other_pass)
        other.start()
        other.join(1.0)
        # Still waiting for this transaction's lock (the row's; SQLite's one writer).
        assert other.is_alive()
    other.join(60)
    assert second == [None]
    assert [r for r, _, _ in _reminders(site)] == [ANN]


def test_no_reminders_while_the_sla_check_is_off(site: Site) -> None:
    """sla.enabled = false stops the worker's whole check, to-dos included; on, it reminds."""
    _add(site, "Quiet")
    sla = site.settings.sla
    later = site.clock() + timedelta(hours=2)
    off = dataclasses.replace(site.settings, sla=dataclasses.replace(sla, enabled=False))
    assert check_once(Runtime(store=site.store, settings=off, now=lambda: later)) == []
    assert _reminders(site) == []
    assert (
        len(check_once(Runtime(store=site.store, settings=site.settings, now=lambda: later))) == 1
    )
    assert [r for r, _, _ in _reminders(site)] == [ANN]
