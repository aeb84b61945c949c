"""Full-text search over many tickets (issue 20, item 6): p50 and p99 of a search.

    python3 benchmarks/search.py [--tickets 100000] [--backends sqlite,postgres]
                                 [--runs 40] [--keep]

For each backend the real migrations build an empty database (SQLite in --workdir,
PostgreSQL as database ``mailgate_search`` on 127.0.0.1, dropped at the end), which
``_scale_fill.py`` fills with --tickets tickets shaped like mailgate's own (three
messages and two participants each; the search index kept by the database as it is on
every write), one ticket in five with an attachment and one in ten with an internal note
(``_search_kinds.extra_rows``, in scale.py's fill). The texts are few and repeated
(every first message is the same VPN story), so a word of them is in every ticket: the
worst case a search has, timed as its own kind.

Each kind of search runs --runs times with a different ticket's words each time (after a
warm-up), as `mailgate tickets search` and the agent's search box run it: the best 50.
A customer's search is the one their portal runs (their tickets only, no notes): both are
``_search_kinds.find``, which scale.py times too, at every size, for a few of these kinds.
Prints p50 and p99 per kind and over all, in milliseconds.
"""

# ruff: noqa: S311 - seeded randomness to pick tickets
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
from _scale_bench import Bench, grow, open_bench, pg_admin  # noqa: E402
from _search_kinds import EVERY_TICKET, LIMIT, find  # noqa: E402

from mailgate.db.models import Ticket  # noqa: E402 - after the path is set

PG_DATABASE = "mailgate_search"  # its own database: scale.py may run beside it


def _kinds(bench: Bench, tickets: int, rng: random.Random) -> dict[str, Callable[[], str]]:
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
        "a word in every ticket": lambda: rng.choice([EVERY_TICKET, "finance", "handshake"]),
        "no such word": lambda: f"zebra{rng.randint(0, 999)}",
    }


def _time(bench: Bench, query: str, customer: str | None) -> tuple[float, int]:
    """How long one search took, in milliseconds, and how many tickets it found."""
    started = time.perf_counter()
    found = find(bench.store, query, customer)
    return (time.perf_counter() - started) * 1000, found


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(bench: Bench, tickets: int, runs: int) -> dict[str, list[tuple[float, int]]]:
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


def report(bench: Bench, tickets: int, times: dict[str, list[tuple[float, int]]]) -> None:
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
        bench = open_bench(backend, args.tickets, args.workdir, pg_database=PG_DATABASE)
        try:
            grow(bench, args.tickets, 0)  # with the attachments and notes
            report(bench, args.tickets, measure(bench, args.tickets, args.runs))
        finally:
            bench.store.engine.dispose()
            if backend == "postgres" and not args.keep:
                pg_admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
            elif not args.keep:
                for path in args.workdir.glob("scale.db*"):
                    path.unlink()


if __name__ == "__main__":
    main()
