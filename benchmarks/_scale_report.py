"""benchmarks/scale.py's table and query plans, and the queries issue 23 replaced, timed
beside the new ones for reference."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailgate.core import notices as notice_rules
from mailgate.core.directory import CustomerView, match_customer
from mailgate.core.states import NoticeState
from mailgate.db.models import Customer, Notice, Ticket
from mailgate.db.store import Store

FLAT = 1.5  # issue 23: every figure within 1.5x of its 1 k value
# Whose account "account look-up" finds: the config's first account, by its domain.
ACCOUNT_ADDRESS = "someone@acme.test"
# Shown with their plans (--plans): the operations that read many rows unless an index
# bounds them, and the old queries for contrast.
EXPLAINED = (
    "queue page (open)",
    "queue page assignee=me",
    "queue page status=all",
    "stats",
    "rate-limit read",
    "tickets list --status Open",
    "reply by References",
    "search: invoice number (subject)",
    "search: customer: a word in every ticket",
    "old: queue open view (NOT IN, id order)",
    "old: rate-limit read (= OR LIKE)",
)


def old_queries(
    store: Store, settings: Any, now: datetime, addresses: list[str]
) -> dict[str, Callable[[], object]]:
    """The queries before issue 23, as they were, on today's schema."""
    closed = [s.name for s in settings.tickets.statuses if s.category == "closed"]

    def queue(session: sa.orm.Session) -> object:
        query = sa.select(Ticket).where(Ticket.status.not_in(closed))
        return list(session.scalars(query.order_by(Ticket.id.desc()).limit(51)))

    def stats_open(session: sa.orm.Session) -> object:
        # Every ticket into Python, to keep the open ones.
        rows = session.execute(
            sa.select(Ticket.status, Ticket.type, Ticket.priority, Ticket.assignee_id,
                      Ticket.created_at, Ticket.first_response_at)
        )  # fmt: skip
        return sum(1 for row in rows if row[0] not in closed)

    def rate_limit(session: sa.orm.Session) -> object:
        spellings = []
        for key in sorted({notice_rules.rate_key(a) for a in addresses}):
            local, _, domain = key.rpartition("@")
            spellings += [Notice.recipient == key, Notice.recipient.like(f"{local}+%@{domain}")]
        return session.execute(
            sa.select(Notice.recipient, Notice.created_at).where(
                sa.or_(*spellings),
                Notice.state != NoticeState.SUPPRESSED,
                Notice.created_at > now - notice_rules.RATE_WINDOW,
            )
        ).all()

    def account(session: sa.orm.Session) -> object:
        # Every account into Python, to find the one listing the address or its domain.
        views = [
            CustomerView(c.id, c.name, tuple(c.domains), tuple(c.addresses), tuple(c.admins),
                         c.owner_id, c.language)
            for c in session.scalars(sa.select(Customer))
        ]  # fmt: skip
        return match_customer(ACCOUNT_ADDRESS, views)

    def run(fn: Callable[[sa.orm.Session], object]) -> Callable[[], object]:
        def once() -> object:
            with store.transaction() as session:
                return fn(session)

        return once

    return {
        "old: queue open view (NOT IN, id order)": run(queue),
        "old: stats open counts (all rows to Python)": run(stats_open),
        "old: rate-limit read (= OR LIKE)": run(rate_limit),
        "old: account look-up (every account read)": run(account),
    }


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def print_table(bench: Any, sizes: list[int], rounds: int) -> None:
    """Operation x size in ms, and the largest size over the smallest."""
    first, last = sizes[0], sizes[-1]
    width = max(len(name) for name in bench.times) + 2
    print(f"\n{bench.backend}: milliseconds, the lowest of {rounds} rounds' medians")
    header = "".join(f"{_size(n):>9}" for n in sizes)
    print(f"{'operation':<{width}}{header}   {_size(last)}/{_size(first)}")
    for name, by_size in bench.times.items():
        cells = "".join(f"{by_size.get(n, float('nan')):>9.1f}" for n in sizes)
        ratio = by_size[last] / by_size[first]
        verdict = "ok" if ratio <= FLAT else ("(reference)" if name.startswith("old") else "")
        print(f"{name:<{width}}{cells}   {ratio:5.2f}x {verdict}")
    for note in bench.notes:
        print(f"  {note}")


@contextmanager
def _statements(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement ``engine`` runs meanwhile, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


_INTERESTING = re.compile(r"\bFROM (tickets|notices|message_ids)\b")


def explain_all(bench: Any, ops: dict[str, Callable[[], object]]) -> None:
    """The plan of every query on the big tables that the chosen operations run."""
    engine: sa.Engine = bench.store.engine
    sqlite = engine.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
    print(f"\n{bench.backend}: query plans at the largest size")
    for name in EXPLAINED:
        ops[name]()  # warm
        with _statements(engine) as seen:
            ops[name]()
        print(f"\n== {name}")
        done = set()
        for statement, parameters in seen:
            head = statement.lstrip().upper()
            if not head.startswith(("SELECT", "WITH")) or not _INTERESTING.search(statement):
                continue
            if statement in done:
                continue
            done.add(statement)
            print("  " + " ".join(statement.split())[:600])
            depth: dict[int, int] = {0: 0}
            with engine.connect() as conn:
                for row in conn.exec_driver_sql(prefix + statement, parameters):
                    if sqlite:  # (id, parent, -, detail): indented under its parent
                        depth[row[0]] = depth.get(row[1], 0) + 1
                        print("    " + "  " * depth[row[0]] + row[3])
                    else:
                        print("      " + row[0])
                conn.rollback()
