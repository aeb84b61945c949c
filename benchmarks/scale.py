"""A million tickets (issue 23): does each operation stay as fast as the database grows?

    python3 benchmarks/scale.py [--sizes 1000,10000,100000,1000000]
                                [--backends sqlite,postgres] [--plans] [--runs 5]

For each backend the real migrations build an empty database (SQLite in --workdir,
PostgreSQL as database ``mailgate_scale`` on 127.0.0.1, dropped at the end), which
``_scale_fill.py`` then grows to each size in turn with rows shaped like mailgate's own
(1 k, then 9 k more, ...), and ``_search_kinds.extra_rows`` gives one ticket in five an
attachment, one in ten an internal note; the customer accounts grow with them, one per
200 tickets besides the config's three. The newest thousand tickets, with the 40 open
ones and the last 30 days, are the same at every size: only the history grows. After each
fill, SQLite's search index is merged as `mailgate db optimize` does after a bulk import,
and PostgreSQL is vacuumed and analyzed as autovacuum would. At each
size it times, in milliseconds, the lowest of three medians of --runs (after a warm-up),
taken in turn. The smallest size is a database of its own (PostgreSQL: ``mailgate_scale_
first``; SQLite: in --workdir/first), filled first and timed at the end with the largest,
each operation in one right after the other, so that the ratio compares figures taken
seconds apart (this machine's speed drifts by a third over minutes):

- processing a customer's reply found by References and by reply token, and a new ticket
  (``intake.accept`` + ``mail.process``, as benchmarks/pipeline.py does), and the notices'
  rate-limit read alone (``notice_counts.recent_notices``);
- ``tickets list`` with each filter and ``tickets show`` (the ``queries`` functions the
  commands call), ``mailgate stats`` (``stats.compute``), and both commands once more as
  processes (start-up included); finding a sender's account (``directory.customer_of``);
- the agent queue page with each filter (the real app through TestClient, signed in by
  the trusted proxy header), and the queue query alone;
- full-text search (``search.search``, the best 50) as the agent's search box runs it,
  and as a customer's portal does (their tickets only; a requester's own, 3 at 1 k and
  2,500 at 1 M, and an account admin's, a quarter of all): a subject's invoice number, an
  address, a file name, a word in every ticket, no match (``_search_kinds``; p50 and p99
  of more kinds at one size: benchmarks/search.py);
- for reference, the queries these replaced (marked "old").

The table gives, per operation, the time at each size and the largest size's over 1 k's
("ok" within 1.5x), and how many tickets each search found. --plans prints the plans
(EXPLAIN QUERY PLAN, or EXPLAIN ANALYZE on PostgreSQL) of the main queries, a search's
among them, at the largest size.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import _scale_fill as filler  # noqa: E402 - beside this file
from _scale_bench import (  # noqa: E402
    PG_DATABASE,
    SECRET,
    Bench,
    grow,
    open_bench,
    pg_admin,
)
from _scale_report import ACCOUNT_ADDRESS, explain_all, old_queries, print_table  # noqa: E402
from _search_kinds import (  # noqa: E402
    found_counts,
    scale_operations,
)
from starlette.testclient import TestClient  # noqa: E402

from mailgate.db import queries, stats, ticket_filters  # noqa: E402
from mailgate.db.directory import customer_of  # noqa: E402
from mailgate.db.models import Ticket  # noqa: E402
from mailgate.inbound.intake import Envelope, accept  # noqa: E402
from mailgate.threading.tokens import reply_token  # noqa: E402
from mailgate.tickets.mail import process  # noqa: E402
from mailgate.tickets.notice_counts import recent_notices  # noqa: E402
from mailgate.web.app import create_app  # noqa: E402

ROUNDS = 3
QUEUE_FILTERS = (
    "", "status=closed", "status=all", "status=Waiting", "team=billing", "team=none",
    "assignee=me", "assignee=none", "assignee=a1@example.com",
)  # fmt: skip
LIST_FILTERS: tuple[dict[str, str], ...] = (
    {}, {"status": "Open"}, {"status": "Closed"}, {"type_": "Technical"},
    {"status": "Waiting", "type_": "General"},
)  # fmt: skip


def median_ms(fn: Callable[[], object], runs: int, *, warm: bool = True) -> float:
    if warm:
        fn()  # caches, the first statements' compilation
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _mail(sender: str, to: str, subject: str, *, replying_to: str = "") -> bytes:
    thread = f"In-Reply-To: <{replying_to}>\r\nReferences: <{replying_to}>\r\n"
    return (
        f"From: <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@bench.test>\r\n{thread if replying_to else ''}\r\n"
        + filler.BODY
    ).encode()


def operations(bench: Bench, size: int, step: int) -> dict[str, Callable[[], object]]:
    """Every operation to time at this size, by name."""
    clock = bench.now + timedelta(hours=2 * step)  # the last size's notices out of the hour
    now: Callable[[], datetime] = lambda: clock  # noqa: E731
    settings, store = bench.settings, bench.store
    # Tickets of the same shape at every size (the newest are never refilled): an open
    # one to reply to, another at each size (the replies pile up on it: it would grow),
    # one to show; and the oldest, which is new at each size.
    target, shown = bench.base - 1 - 4 * step, bench.base - 2
    oldest = bench.base - size + 1
    with store.transaction() as session:
        requester = session.scalar(sa.select(Ticket.requester).where(Ticket.id == target))
    first_id = f"c{target}-0@{requester.rpartition('@')[2]}"
    token_to = f"support+{reply_token(target, SECRET)}@example.com"
    pool = itertools.count()

    def receive(raw: bytes, outcome: str) -> None:
        accepted = accept(store, raw, source="smtp", envelope=Envelope(), max_bytes=10**7, now=now)
        result = process(store, accepted.inbound_id, settings=settings, now=now)
        assert result.outcome == outcome, result

    def newcomer() -> bytes:  # a customer with a long history, a new subject
        sender = f"user{next(pool) % filler.POOL // 4 * 4}@acme.test"
        return _mail(sender, "support@example.com", f"New question {uuid.uuid4().hex[:8]}")

    ops: dict[str, Callable[[], object]] = {
        "reply by References": lambda: receive(
            _mail(requester, "support@example.com", "Re: it", replying_to=first_id), "reply"
        ),
        "reply by token": lambda: receive(_mail(requester, token_to, "more"), "reply"),
        "new ticket": lambda: receive(newcomer(), "new_ticket"),
        "rate-limit read": lambda: _read(
            store, recent_notices, [requester, "a1@example.com"], now=clock
        ),
    }
    for f in LIST_FILTERS:
        name = " ".join(["tickets list", *(f"--{k.rstrip('_')} {v}" for k, v in f.items())])
        ops[name] = functools.partial(_read, store, _list, settings, **f)
    ops["tickets show (newest)"] = lambda: _read(store, queries.show_ticket, shown)
    ops["tickets show (oldest)"] = lambda: _read(store, queries.show_ticket, oldest)
    ops["stats"] = lambda: _read(store, stats.compute, settings=settings, now=clock, since_days=30)
    # Every message and every customer's page: among 5 accounts at 1 k, 5,000 at 1 M.
    ops["account look-up"] = lambda: _read(store, customer_of, ACCOUNT_ADDRESS)
    client = TestClient(create_app(settings, store, now=now))
    for query in QUEUE_FILTERS:
        ops[f"queue page {query or '(open)'}"] = functools.partial(_page, client, query)
    ops["queue query (open)"] = lambda: _read(store, _open_queue, settings)
    for name, args in (("tickets list", ("tickets", "list")), ("stats", ("stats",))):
        ops[f"CLI process: {name}"] = functools.partial(_cli, bench, args)
    ops |= scale_operations(store, bench.base)
    return ops | old_queries(store, settings, clock, [requester, "a1@example.com"])


def measure(sized: list[tuple[Bench, int, int]], runs: int) -> None:
    """Every operation at each (database, size, step) of ``sized``, into its database's
    ``times``: the lowest of ``ROUNDS`` medians, taken in turn, as other work on the
    machine (tests, other benchmarks) only ever adds time, and in bursts. With several
    databases, each operation is timed in one right after the other: this machine's
    speed drifts by a third over minutes, which figures taken a fill apart (10 minutes
    at a million tickets) turned into ratios of 0.6x or 1.5x for queries that read the
    same rows at both sizes."""
    prepared = [(bench, operations(bench, size, step)) for bench, size, step in sized]
    best: list[dict[str, float]] = [{} for _ in prepared]
    for round_ in range(ROUNDS):
        for name in prepared[0][1]:
            for (bench, ops), found in zip(prepared, best, strict=True):
                # A process start is most of a second, and no query in it grows: one a round.
                cli = name.startswith("CLI")
                ms = median_ms(ops[name], 1 if cli else runs, warm=round_ == 0 or not cli)
                found[name] = min(found.get(name, ms), ms)
                # The tickets "new ticket" opened are closed again at once: the open
                # tickets stay the same 40 for every other figure (fewer than a page, on
                # purpose).
                with bench.store.transaction() as session:
                    session.execute(
                        sa.update(Ticket)
                        .where(Ticket.id > bench.base, Ticket.closed_at.is_(None))
                        .values(status="Closed", closed_at=Ticket.created_at)
                    )
    for (bench, size, _), found in zip(sized, best, strict=True):
        for name, ms in found.items():
            bench.times.setdefault(name, {})[size] = ms


def _read(store: Any, fn: Callable[..., object], *args: Any, **kwargs: Any) -> object:
    with store.transaction() as session:
        return fn(session, *args, **kwargs)


def _list(
    session: Any, settings: Any, status: str | None = None, type_: str | None = None
) -> object:
    """What `tickets list` reads (db.ticket_filters), its default 50 rows."""
    view = ticket_filters.TicketFilter(status=status, type=type_)
    return ticket_filters.summaries(session, view, settings.tickets, limit=50)


def _open_queue(session: Any, settings: Any) -> object:
    statuses = queries.open_statuses(session, settings.tickets)
    return queries.queue(session, statuses=statuses, limit=51)


def _page(client: TestClient, query: str) -> None:
    response = client.get(f"/agent?{query}", headers={"X-Remote-User": "a0@example.com"})
    assert response.status_code == 200, response.text[:500]


def _cli(bench: Bench, args: tuple[str, ...]) -> None:
    subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(bench.config_path), *args],
        check=True,
        capture_output=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--plans", action="store_true", help="query plans at the largest size")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mailgate-scale"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    assert sizes[0] >= filler.RECENT, f"the smallest size is {filler.RECENT} (the recent tickets)"
    # Each size replies to its own open ticket, one of the newest OPEN_NEWEST.
    assert len(sizes) <= filler.OPEN_NEWEST // 4, "too many sizes"
    for backend in args.backends.split(","):
        run_backend(backend, sizes, args)


def run_backend(backend: str, sizes: list[int], args: argparse.Namespace) -> None:
    """Fill, time and report one backend. The smallest size is a database of its own
    (``first``), filled first and timed with the largest at the end, operation by
    operation (``measure``); the sizes between are timed as the big one grows."""
    bench = open_bench(backend, sizes[-1], args.workdir)
    first = None
    try:
        if len(sizes) > 1:
            first = open_bench(
                backend, sizes[-1], args.workdir / "first", pg_database=f"{PG_DATABASE}_first"
            )
            grow(first, sizes[0], 0)
        filled = 0
        for step, size in enumerate(sizes):
            grow(bench, size, filled)
            filled = size
            if first is not None and step == 0:
                continue  # timed in ``first`` with the largest size, at the end
            timed = [(bench, size, step)]
            if first is not None and step == len(sizes) - 1:
                timed.insert(0, (first, sizes[0], 0))
            measure(timed, args.runs)
            for at, at_size, _ in timed:
                found = found_counts(scale_operations(at.store, at.base))
                bench.note(f"{at_size:,} tickets measured; searches found {found}")
        if first is not None:
            for name, by_size in first.times.items():
                bench.times[name][sizes[0]] = by_size[sizes[0]]
            bench.notes[:0] = [f"{note} (the database of its own)" for note in first.notes]
        print_table(bench, sizes, ROUNDS)
        if args.plans:
            explain_all(bench, operations(bench, sizes[-1], len(sizes)))
    finally:
        for made, database, folder in (
            (bench, PG_DATABASE, args.workdir),
            (first, f"{PG_DATABASE}_first", args.workdir / "first"),
        ):
            if made is None:
                continue
            made.store.engine.dispose()
            if backend == "postgres" and not args.keep:
                pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            elif not args.keep:
                for path in folder.glob("scale.db*"):
                    path.unlink()


if __name__ == "__main__":
    main()
