"""With ANALYZE's statistics in the SQLite file (an operator's ANALYZE, or ``PRAGMA
optimize``), the queries for the few rows in a state still read them by the state's
index (mailgate/db/planner.py): the notices due, the messages waiting or failed, the
queue's counts of open tickets. The statistics are those ANALYZE wrote for
benchmarks/scale.py's database at a million tickets, written into a small one: SQLite
plans for a million tickets while the test runs on a few. SQLite only: PostgreSQL's
statistics know how rare a value is."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select

from mailgate.db import mail_queries, requeue
from mailgate.db.models import Notice
from mailgate.jobs import reconciler
from mailgate.outbound import sender
from tests.mail import build
from tests.web_support import Site, sign_in_agent

# sqlite_stat1 of benchmarks/scale.py's database at a million tickets, after ANALYZE:
# (table, index, rows, then rows per distinct value of each leading column set).
MILLION = [
    ("inbound_messages", "ix_inbound_messages_state", "2000108 2000108"),
    ("inbound_messages", "sqlite_autoindex_inbound_messages_1", "2000108 1"),
    ("inbound_messages", "sqlite_autoindex_inbound_messages_2", "2000108 2000108"),
    ("notices", "ix_notices_inbound_id", "5000144 3"),
    ("notices", "ix_notices_rate_key_created_at", "5000144 12377 1"),
    ("notices", "ix_notices_recipient_created_at", "5000144 12377 1"),
    ("notices", "ix_notices_state_next", "5000144 1666715 1250036"),
    ("notices", "ix_notices_ticket_id", "5000144 5"),
    ("notices", "sqlite_autoindex_notices_1", "5000144 1"),
    ("notices", "sqlite_autoindex_notices_2", "5000144 1"),
    ("tickets", "ix_tickets_assignee_id_status_id", "1000036 200008 55558 1"),
    ("tickets", "ix_tickets_closed_at", "1000036 1"),
    ("tickets", "ix_tickets_created_at", "1000036 1"),
    ("tickets", "ix_tickets_customer_id_id", "1000036 250009 1"),
    ("tickets", "ix_tickets_first_response_at", "1000036 1"),
    ("tickets", "ix_tickets_requester_id", "1000036 2501 1"),
    ("tickets", "ix_tickets_status_id", "1000036 166673 1"),
    ("tickets", "ix_tickets_team_id_status_id", "1000036 333346 83337 1"),
    ("tickets", "sqlite_autoindex_tickets_1", "1000036 1"),
]
# A whole table or a whole index of it read, where the rows wanted are few.
WHOLE = re.compile(
    r"SCAN (notices|inbound_messages)\b|SCAN tickets USING COVERING INDEX ix_tickets_assignee"
)


def _analyzed_as_a_million(path: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("ANALYZE")  # makes sqlite_stat1
        db.execute("DELETE FROM sqlite_stat1")
        db.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", MILLION)
        db.execute("ANALYZE sqlite_schema")  # reads them back
    db.close()


def test_the_few_rows_in_a_state_are_read_by_the_state(site: Site) -> None:
    """Each such query's plan, with a million tickets' statistics, reads the state's
    index: without ``planner.rare``, SQLite read all 5 million notices to find none due
    (1.6 s) and the whole assignee index for the queue's counts."""
    _analyzed_as_a_million(site.store.engine.url.database or "")
    site.store.engine.dispose()  # statistics are read as a connection opens
    plans: list[tuple[str, list[str]]] = []

    @event.listens_for(site.store.engine, "before_cursor_execute")
    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            rows = cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plans.append((statement, [row[3] for row in rows]))

    now = site.clock()
    sender.due_notices(site.store, now=now)
    reconciler.count_due(site.store, now=now, notices=True)
    reconciler.reconcile(
        site.store,
        now=now,
        older_than=timedelta(hours=1),
        enqueue_inbound=lambda _: None,
        enqueue_notice=lambda _: None,
    )
    with site.store.transaction() as session:
        requeue.failed_ids(session)
        session.scalars(select(Notice.id).where(mail_queries.notices_due_now(now))).all()
    agent = sign_in_agent(site)
    assert agent.get("/agent").status_code == 200
    # And mail on its way in: a new ticket, and a reply to it.
    number = site.ingest(build(sender="Zoe <zoe@acme.test>", subject="Fax", body="jammed"))
    reply = build(sender="zoe@acme.test", subject=f"Re: Fax [#{number}]", body="still")
    assert site.ingest(reply) == number
    assert agent.get(f"/tickets/{number}").status_code == 200
    read = [line for _, plan in plans for line in plan]
    assert [(s, p) for s, p in plans if any(WHOLE.search(line) for line in p)] == []
    for index in ("ix_notices_state_next", "ix_inbound_messages_state", "ix_tickets_status_id"):
        assert any(index in line for line in read), index  # the queries were planned
