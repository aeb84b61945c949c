"""Full-text search over many tickets (issue 20, item 6): p50 and p99 of a search.

    python3 benchmarks/search.py [--tickets 100000] [--backends sqlite,postgres]
                                 [--runs 40] [--keep]

For each backend the real migrations build an empty database (SQLite in --workdir,
PostgreSQL as database ``mailgate_search`` on 127.0.0.1, dropped at the end), which
``_scale_fill.py`` fills with --tickets tickets shaped like mailgate's own (three
messages and two participants each; the search index kept by the database as it is on
every write); then one ticket in five gets an attachment and one in ten an internal
note. The texts are few and repeated (every first message is the same VPN story), so a
word of them is in every ticket: the worst case a search has, timed as its own kind.

Each kind of search runs --runs times with a different ticket's words each time (after a
warm-up), as `mailgate tickets search` and the agent's search box run it: the best 50.
A customer's search is the one their portal runs (their tickets only, no notes). Prints
p50 and p99 per kind and over all, in milliseconds.
"""

# ruff: noqa: S608, S311 - statements of this file's constants; seeded randomness to pick tickets
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(BENCHMARKS.parent))

import _scale_fill as filler  # noqa: E402 - beside this file
import scale  # noqa: E402

from mailgate.db import search  # noqa: E402 - after the path is set
from mailgate.db.models import Ticket  # noqa: E402
from mailgate.web import access  # noqa: E402

scale.PG_DATABASE = "mailgate_search"  # its own database: scale.py may run beside it
LIMIT = 50


def _extra_rows(bench: scale.Bench) -> None:
    """An attachment on one ticket in five, an internal note on one in ten: the rows
    _scale_fill does not make (the note's id in a free slot of its ticket's, t * 8 + 3)."""
    sqlite = bench.backend == "sqlite"
    false = "0" if sqlite else "FALSE"

    def json(text: str) -> str:
        return f"'{text}'" if sqlite else f"CAST('{text}' AS json)"

    statements = (
        "INSERT INTO attachments (id, ticket_message_id, filename, content_type, size, sha256, "
        "content_id, inline, content, omitted) "
        "SELECT id, id, CASE ticket_id % 2 WHEN 0 THEN 'invoice-' || ticket_id || '.pdf' "
        "ELSE 'screenshot-' || ticket_id || '.png' END, 'application/octet-stream', 1, '', '', "
        f"{false}, NULL, '' FROM ticket_messages WHERE id % 8 = 0 AND ticket_id % 5 = 0",
        "INSERT INTO ticket_messages (id, ticket_id, inbound_id, direction, author_email, "
        'author_name, "to", cc, subject, body_text, body_html, body_reply, message_id, '
        'content_sha256, in_reply_to, "references", thread_method, after_close, screening, '
        "created_at) "
        "SELECT id * 8 + 3, id, NULL, 'note', 'a0@example.com', 'Agent 0', "
        f"{json('[]')}, {json('[]')}, '', 'Escalated to the vendor as case V' || id || '.', "
        f"'', '', '', '', {json('[]')}, {json('[]')}, 'portal', {false}, {json('{}')}, "
        "created_at FROM tickets WHERE id % 10 = 3",
    )
    with scale._engine(bench.url) as engine, engine.connect() as conn:
        for statement in statements:
            filler._run(conn, statement)  # ``%`` is modulo here, no placeholder
        conn.connection.commit()  # the driver's own transaction: SQLAlchemy began none
    if not sqlite:
        with (
            scale._engine(bench.url, isolation_level="AUTOCOMMIT") as engine,
            engine.connect() as conn,
        ):
            conn.exec_driver_sql("VACUUM ANALYZE")


def _kinds(bench: scale.Bench, tickets: int, rng: random.Random) -> dict[str, Callable[[], str]]:
    """Per kind of search, a function that makes one, from a ticket picked at random."""
    lo, hi = bench.base - tickets + 1, bench.base

    def ticket(remainder: int = 0, modulus: int = 1) -> int:
        """A random ticket whose number leaves ``remainder`` divided by ``modulus``."""
        t = rng.randint(lo, hi)
        t += remainder - t % modulus
        return t - modulus if t > hi else t + modulus if t < lo else t

    def requester() -> str:
        with bench.store.transaction() as session:
            found = session.scalar(sa.select(Ticket.requester).where(Ticket.id == ticket()))
        return str(found)

    return {
        "invoice number (subject)": lambda: f"Invoice {ticket(1, 4)}",
        "requester address": requester,
        "attachment name": lambda: f"invoice-{ticket(0, 10)}.pdf",
        "note words (staff)": lambda: f"vendor V{ticket(3, 10)}",
        "two words, 1 ticket in 4": lambda: rng.choice(["printer jammed", "VPN down"]),
        "a word in every ticket": lambda: rng.choice(["certificate", "finance", "handshake"]),
        "no such word": lambda: f"zebra{rng.randint(0, 999)}",
    }


def _time(bench: scale.Bench, query: str, customer: str | None) -> tuple[float, int]:
    """How long one search took, in milliseconds, and how many tickets it found."""
    started = time.perf_counter()
    with bench.store.transaction() as session:
        if customer is None:
            found = search.search(session, query, limit=LIMIT)
        else:
            visible = access.visible_to_customer(session, customer)
            found = search.search(session, query, within=visible, internal=False, limit=LIMIT)
    return (time.perf_counter() - started) * 1000, len(found)


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(bench: scale.Bench, tickets: int, runs: int) -> dict[str, list[tuple[float, int]]]:
    """Every kind of search ``runs`` times (after one untimed): (milliseconds, found)."""
    rng = random.Random(20)
    times: dict[str, list[tuple[float, int]]] = {}
    kinds = _kinds(bench, tickets, rng)
    for name, make in kinds.items():
        _time(bench, make(), None)
        times[name] = [_time(bench, make(), None) for _ in range(runs)]
    # A customer of the pool of requesters (each asked about 1 ticket in 400).
    for name in ("invoice number (subject)", "a word in every ticket"):
        customers = [kinds["requester address"]() for _ in range(runs + 1)]
        make = kinds[name]
        _time(bench, make(), customers[0])
        times[f"customer: {name}"] = [_time(bench, make(), c) for c in customers[1:]]
    return times


def report(bench: scale.Bench, tickets: int, times: dict[str, list[tuple[float, int]]]) -> None:
    print(f"\n{bench.backend}, {tickets:,} tickets: search time in ms (the best {LIMIT})")
    print(f"  {'kind':<40} {'p50':>8} {'p99':>8} {'max':>8} {'found (median)':>15}")
    everything: list[float] = []
    for name, samples in times.items():
        ms = [m for m, _ in samples]
        everything += ms
        found = statistics.median(n for _, n in samples)
        p50, p99 = statistics.median(ms), _percentile(ms, 0.99)
        print(f"  {name:<40} {p50:>8.1f} {p99:>8.1f} {max(ms):>8.1f} {found:>15g}")
    p50, p99 = statistics.median(everything), _percentile(everything, 0.99)
    print(f"  {'all searches':<40} {p50:>8.1f} {p99:>8.1f} {max(everything):>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=40, help="timed searches per kind")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mailgate-search"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    assert args.tickets >= filler.RECENT, f"at least {filler.RECENT} tickets"
    for backend in args.backends.split(","):
        bench = scale.open_bench(backend, args.tickets, args.workdir)
        try:
            scale.grow(bench, args.tickets, 0)
            _extra_rows(bench)
            report(bench, args.tickets, measure(bench, args.tickets, args.runs))
        finally:
            bench.store.engine.dispose()
            if backend == "postgres" and not args.keep:
                scale._pg_admin(f'DROP DATABASE IF EXISTS "{scale.PG_DATABASE}" WITH (FORCE)')
            elif not args.keep:
                for path in args.workdir.glob("scale.db*"):
                    path.unlink()


if __name__ == "__main__":
    main()
