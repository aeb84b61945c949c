"""Issue 23 (a million tickets): the queue, `mailgate stats` and the notices' rate limit
read what an index bounds, never every ticket or notice. Plans and row counts, not
timings: benchmarks/scale.py measures the times."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from mailgate.db import queries, stats
from mailgate.db.models import Notice, Ticket
from mailgate.db.store import Store
from mailgate.tickets import changes
from mailgate.tickets.actors import Actor
from mailgate.tickets.notice_counts import recent_notices
from tests.web_support import Site, make_site, sign_in_agent

OLD_CLOSED = 300  # closed long ago: nothing here may read them one by one


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The portal's three tickets through the mail path (one assigned, one on another
    team), and ``OLD_CLOSED`` tickets closed a year before."""
    site = make_site(f"sqlite:///{tmp_path / 'mailgate.db'}")
    add_old_closed(site, OLD_CLOSED)
    with site.store.transaction() as session:
        ann = Actor("ann@example.com", "ann@example.com", "Ann")
        at = site.clock()
        changes.assign(session, settings=site.settings, number=site.numbers["carol"],
                       actor=ann, assignee="ann@example.com", at=at)  # fmt: skip
        changes.set_team(session, settings=site.settings, number=site.numbers["dave"],
                         actor=ann, team="billing", at=at)  # fmt: skip
    yield site
    site.store.engine.dispose()


def add_old_closed(site: Site, count: int) -> None:
    """``count`` tickets created and closed a year before the clock, numbered after the rest."""
    long_ago = site.clock() - timedelta(days=365)
    with site.store.transaction() as session:
        first = (session.scalar(sa.select(sa.func.max(Ticket.id))) or 0) + 1
        session.execute(
            sa.insert(Ticket),
            [
                {
                    "id": i,
                    "number": i,
                    "requester": f"old{i}@acme.test",
                    "subject": "Old",
                    "type": "General",
                    "priority": "Normal",
                    "status": "Closed",
                    "created_at": long_ago,
                    "updated_at": long_ago,
                    "first_response_at": long_ago,
                    "closed_at": long_ago,
                }
                for i in range(first, first + count)
            ],
        )


def _compute(session: Session, site: Site) -> dict[str, Any]:
    return stats.compute(session, settings=site.settings, now=site.clock(), since_days=30)


class _CountingCursor(sqlite3.Cursor):
    """Counts the rows handed to Python, whichever fetch SQLAlchemy uses."""

    fetched = 0

    def fetchone(self) -> Any:
        row = super().fetchone()
        _CountingCursor.fetched += row is not None
        return row

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        rows = super().fetchmany(size)
        _CountingCursor.fetched += len(rows)
        return rows

    def fetchall(self) -> list[Any]:
        rows = super().fetchall()
        _CountingCursor.fetched += len(rows)
        return rows


class _CountingConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _CountingCursor) -> Any:
        return super().cursor(factory)


def _rows_read_by_stats(site: Site) -> tuple[dict[str, Any], int]:
    """stats.compute's answer, and how many rows it read into Python."""
    path = site.settings.database.url.removeprefix("sqlite:///")
    engine = sa.create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(path, factory=_CountingConnection)
    )
    try:
        with Session(engine) as session:
            _CountingCursor.fetched = 0
            result = _compute(session, site)
            return result, _CountingCursor.fetched
    finally:
        engine.dispose()


def test_stats_reads_the_same_rows_however_many_tickets_are_closed(site: Site) -> None:
    """The rows `mailgate stats` reads into Python do not grow with the tickets closed
    long ago: open tickets are counted by the database, group by group, and the times
    are read for the period only. (It read every ticket, to keep the open ones.)"""
    before, rows = _rows_read_by_stats(site)
    add_old_closed(site, 10 * OLD_CLOSED)
    after, rows_later = _rows_read_by_stats(site)
    assert after == before
    assert rows_later == rows
    assert rows < 30  # a few groups, agents, statuses: not OLD_CLOSED tickets
    assert before["open"]["total"] == 3


def test_a_status_no_longer_configured_is_open_in_the_queue_and_the_stats(site: Site) -> None:
    """The open view lists the statuses tickets have that are not closed, so a ticket in
    a status removed from the config is still shown and counted, as "NOT IN (closed)" did."""
    dave = site.numbers["dave"]
    with site.store.transaction() as session:
        session.execute(sa.update(Ticket).where(Ticket.number == dave).values(status="Escalated"))
    with site.store.transaction() as session:
        assert queries.statuses_in_use(session) == ["Closed", "Escalated", "New"]
        assert queries.open_statuses(session, site.settings.tickets) == ["Escalated", "New"]
        assert _compute(session, site)["open"]["by_status"] == {"Escalated": 1, "New": 2}
    page = sign_in_agent(site).get("/agent").text
    assert f'href="/tickets/{dave}"' in page


def test_queue_pages_follow_each_other_newest_first(site: Site) -> None:
    """Merged from one read per status, pages are still newest first and do not overlap."""
    with site.store.transaction() as session:
        session.execute(
            sa.update(Ticket).where(Ticket.id % 3 == 0).values(status="Open", closed_at=None)
        )
        session.execute(
            sa.update(Ticket).where(Ticket.id % 3 == 1).values(status="Waiting", closed_at=None)
        )
    with site.store.transaction() as session:
        statuses = queries.open_statuses(session, site.settings.tickets)
        pages = [
            [t.id for t in queries.queue(session, statuses=statuses, offset=o, limit=50)]
            for o in range(0, 250, 50)
        ]
        expected = list(
            session.scalars(
                sa.select(Ticket.id)
                .where(Ticket.status.in_(statuses))
                .order_by(Ticket.id.desc())
                .limit(250)
            )
        )
    assert [i for page in pages for i in page] == expected


@contextmanager
def _statements(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def _plans(store: Store, run: Callable[[], object]) -> list[str]:
    """SQLite's plan of each query ``run`` makes on tickets or notices, one string each."""
    with _statements(store.engine) as seen:
        run()
    out = []
    with store.engine.connect() as conn:
        for statement, parameters in seen:
            if re.search(r"\bFROM (tickets|notices)\b", statement):
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
                out.append(" | ".join(row[3] for row in rows))
    return out


def _no_full_scan(plans: list[str]) -> None:
    for plan in plans:
        assert not re.search(r"\bSCAN (tickets|notices)\b", plan), plan


QUEUE_VIEWS = {
    "": ["ix_tickets_status_id (status=?)"],
    "status=closed": ["ix_tickets_status_id (status=?)"],
    "status=all": ["ix_tickets_status_id (status=?)"],
    "status=Waiting": ["ix_tickets_status_id (status=?)"],
    "team=billing": ["ix_tickets_team_id_status_id (team_id=? AND status=?)"],
    "team=none": ["ix_tickets_team_id_status_id (team_id=? AND status=?)"],
    "assignee=me": ["ix_tickets_assignee_id_status_id (assignee_id=? AND status=?)"],
    "assignee=none": ["ix_tickets_assignee_id_status_id (assignee_id=? AND status=?)"],
    # Issue 20's sorts and filters: still each status from its index, never a table walk.
    "sort=priority&priority=High": ["ix_tickets_status_id (status=?)"],
    "sort=due&tag=vpn": ["ix_tickets_status_id (status=?)"],
    "sort=updated&customer=Acme": ["ix_tickets_customer_id_id (customer_id=?)"],
}


@pytest.mark.parametrize("query", list(QUEUE_VIEWS))
def test_queue_views_read_each_status_from_an_index(site: Site, query: str) -> None:
    """Every queue view reads each status newest first from an index that ends in
    (status, id): no walk of the table in id order, filtering as it goes."""
    client = sign_in_agent(site)
    plans = _plans(site.store, lambda: client.get(f"/agent?{query}"))
    _no_full_scan(plans)
    for index in QUEUE_VIEWS[query]:
        assert index in " ".join(plans), plans


def test_stats_queries_use_the_status_and_date_indexes(site: Site) -> None:
    """Open tickets from the status index; response and resolution times from the
    indexes on first_response_at and closed_at, within the period."""
    with site.store.transaction() as session:
        plans = _plans(site.store, lambda: _compute(session, site))
    _no_full_scan(plans)
    joined = " ".join(plans)
    assert "ix_tickets_status_id (status=?)" in joined
    assert "ix_tickets_first_response_at (first_response_at>? AND first_response_at<?)" in joined
    assert "ix_tickets_closed_at (closed_at>? AND closed_at<?)" in joined
    # The tickets opened in the period (issue 22's per-day series and breakdowns).
    assert "ix_tickets_created_at (created_at>? AND created_at<?)" in joined


def test_rate_limit_read_is_one_index_range_per_mailbox(site: Site) -> None:
    """Every spelling of a mailbox in one range of (rate_key, created_at), bounded to the
    hour: it read every notice the address was ever sent (a LIKE no index served)."""
    with site.store.transaction() as session:
        plans = _plans(
            site.store,
            lambda: recent_notices(
                session, ["Carol+x@acme.test", "ann@example.com"], now=site.clock()
            ),
        )
    assert plans == [
        "SEARCH notices USING INDEX ix_notices_rate_key_created_at (rate_key=? AND created_at>?)"
    ]


def test_notices_are_written_with_their_mailbox(site: Site) -> None:
    """rate_key is the recipient's mailbox: lower case, plus-detail dropped."""
    site.ingest(
        b"From: Victim+7@Acme.test\r\nTo: support@example.com\r\nSubject: Hi\r\n"
        b"Message-ID: <v7@acme.test>\r\n\r\nHello\r\n"
    )
    with site.store.transaction() as session:
        keys = dict(session.execute(sa.select(Notice.recipient, Notice.rate_key)).all())
    assert keys["victim+7@acme.test"] == "victim@acme.test"
    assert keys["carol@acme.test"] == "carol@acme.test"


def test_migration_fills_the_mailbox_of_notices_already_there(db_url: str) -> None:
    """Upgrading to 0010 computes rate_key for the notices a database already holds."""
    store = Store(db_url)
    try:
        store.upgrade("0009_credential_generation")
        at = {"at": datetime(2026, 1, 5, tzinfo=UTC)}
        with store.engine.begin() as conn:
            for i, recipient in enumerate(("Victim+1@Acme.test", "plain@x.test", "a+b+c@x.test")):
                conn.execute(
                    sa.text(
                        "INSERT INTO notices (id, kind, recipient, language, state, cause, "
                        "message_id, in_reply_to, created_at, attempts, last_error, detail) "
                        "VALUES (:id, 'ack', :recipient, 'en', 'sent', :cause, :mid, '', :at, 1, "
                        "'', '{}')"
                    ),
                    {**at, "id": i + 1, "recipient": recipient, "cause": f"c{i}", "mid": f"m{i}"},
                )
        store.upgrade()
        with store.engine.connect() as conn:
            found: dict[str, str] = dict(
                conn.execute(sa.text("SELECT recipient, rate_key FROM notices")).all()
            )
        assert found == {
            "Victim+1@Acme.test": "victim@acme.test",
            "plain@x.test": "plain@x.test",
            "a+b+c@x.test": "a@x.test",
        }
    finally:
        store.engine.dispose()
