"""`mailgate db optimize`: the search index merged and the planner's statistics fresh.

SQLite. Each write to a ticket adds a small segment to an FTS5 index, and FTS5 merges
them as it goes (automerge), which leaves a handful to a score per index: a bulk fill of
a million tickets left 19 in the messages index. A search that looks a row up pays for
every segment: a hundred lookups of a word in every message took 10.7 ms in 19
segments, 7.6 ms in 6 and 4.9 ms in one. FTS5's 'merge' command with a negative page
count merges them all into one, as 'optimize' does, but a bounded number of pages at a
time; each step is its own transaction, so a receiver waits at most one step (about
0.2 s at a million tickets) for the write lock, never the whole merge (8 s).

It does not ANALYZE SQLite (``PRAGMA optimize`` would): the queries are planned for a
database without statistics, which they need not have. Where statistics would mislead
SQLite (averages: a status held by a sixth of the tickets, when few are open) the
queries say so themselves (``db.planner``), so an operator's ANALYZE does no harm.

PostgreSQL. The GIN indexes take new rows into a pending list that every search reads
until autovacuum folds it in (``gin_clean_pending_list`` folds it now), and the search's
probes ask ANALYZE's statistics which words are common (``search_probe``): the four
source tables are analyzed again.
"""

# ruff: noqa: S608 - every statement here is made of search_index's constants, no input.
from __future__ import annotations

import time
from dataclasses import dataclass

from mailgate.db import search_index
from mailgate.db.store import Store

# Pages of index written by one merge step, at most (each about 4 KB).
MERGE_STEP_PAGES = 2000


@dataclass(frozen=True)
class Optimized:
    """What optimizing one source's index did."""

    source: str
    # SQLite: the index's segments before and after; PostgreSQL: None.
    segments_before: int | None
    segments_after: int | None
    steps: int  # transactions it took
    seconds: float


def optimize(store: Store, *, step_pages: int = MERGE_STEP_PAGES) -> list[Optimized]:
    """Optimize the search index of every source (module docstring)."""
    if store.is_sqlite:
        return [_merge_sqlite(store, source, step_pages) for source in search_index.SOURCES]
    return [_refresh_postgresql(store, source) for source in search_index.SOURCES]


def _merge_sqlite(store: Store, source: str, step_pages: int) -> Optimized:
    fts = search_index.fts_table(source)
    started = time.monotonic()
    before = segments(store, source)
    steps = 0
    # Nothing to merge in one segment or none; otherwise a step that changes fewer than
    # two rows did no work (the FTS5 documentation's test), which ends the merge.
    while before > 1:
        with store.engine.begin() as conn:
            changes = "SELECT total_changes()"
            first = conn.exec_driver_sql(changes).scalar_one()
            conn.exec_driver_sql(
                f"INSERT INTO {fts} ({fts}, rank) VALUES ('merge', ?)", (-step_pages,)
            )
            worked = conn.exec_driver_sql(changes).scalar_one() - first >= 2
        steps += 1
        if not worked:
            break
    return Optimized(source, before, segments(store, source), steps, time.monotonic() - started)


def segments(store: Store, source: str) -> int:
    """How many segments ``source``'s FTS5 index has (SQLite): each has at least one row
    in its ``_idx`` shadow table (the first term of each of its leaf pages)."""
    fts = search_index.fts_table(source)
    with store.engine.connect() as conn:
        return int(
            conn.exec_driver_sql(f"SELECT count(DISTINCT segid) FROM {fts}_idx").scalar_one()
        )


def _refresh_postgresql(store: Store, source: str) -> Optimized:
    started = time.monotonic()
    with store.engine.begin() as conn:
        for index in search_index.pg_indexes(source):
            conn.exec_driver_sql("SELECT gin_clean_pending_list(%s::regclass)", (index,))
        conn.exec_driver_sql(f"ANALYZE {source}")
    return Optimized(source, None, None, 1, time.monotonic() - started)
