"""`mailgate db optimize` (mailgate/db/maintenance.py): the search index merged into one
segment on SQLite, a step at a time, and found the same; PostgreSQL's analyzed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from click.testing import Result
from sqlalchemy import text

from mailgate.core.settings import Settings
from mailgate.db import maintenance, search, search_index
from mailgate.db.store import Store
from tests.builders import build, deliver
from tests.conftest import make_settings


def _found(store: Store, query: str) -> list[int]:
    with store.transaction() as session:
        return [ticket.number for ticket in search.search(session, query)]


def _tickets_in_many_segments(
    store: Store, settings: Settings, now: Callable[[], datetime], count: int = 12
) -> None:
    """``count`` tickets, each written in its own transaction, with FTS5's own merging
    off: each leaves a segment in every index it adds to."""
    with store.engine.begin() as conn:
        for source in search_index.SOURCES:
            fts = search_index.fts_table(source)
            # FTS5's own command, on this file's constant table names.
            off = f"INSERT INTO {fts} ({fts}, rank) VALUES ('automerge', 0)"  # noqa: S608
            conn.exec_driver_sql(off)
    for n in range(count):
        said = f"The VPN certificate expired on laptop {n}." if n % 3 else "The printer jams."
        # Words of its own: each segment spans pages, so a merge of 2 takes steps.
        body = said + " " + " ".join(f"serial{n}x{i}" for i in range(1000))
        deliver(store, settings, build(subject=f"Ticket {n}", body=body), now)


def test_optimize_merges_each_sqlite_index_into_one_segment_a_step_at_a_time(
    sqlite_url: str,
    stores: Callable[[Settings], Store],
    now: Callable[[], datetime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(sqlite_url)
    store = stores(settings)
    _tickets_in_many_segments(store, settings, now)
    before = {source: maintenance.segments(store, source) for source in search_index.SOURCES}
    assert before["ticket_messages"] >= 12
    found = _found(store, "certificate"), _found(store, "printer jams")
    assert len(found[0]) == 8 and len(found[1]) == 4
    commits: list[int] = []
    begin = store.engine.begin

    def counted_begin() -> object:
        commits.append(1)
        return begin()

    monkeypatch.setattr(store.engine, "begin", counted_begin)
    done = {d.source: d for d in maintenance.optimize(store, step_pages=2)}
    monkeypatch.undo()
    for source, segments in before.items():
        assert done[source].segments_before == segments
        # (No attachment here: that index is empty, and stays so.)
        assert (
            done[source].segments_after == maintenance.segments(store, source) == min(segments, 1)
        )
    # Two pages at a time: the messages index took several transactions, not one.
    assert done["ticket_messages"].steps > 2
    assert len(commits) >= sum(d.steps for d in done.values())
    assert (_found(store, "certificate"), _found(store, "printer jams")) == found
    again = maintenance.optimize(store)
    assert all(d.steps == 0 and d.segments_after == d.segments_before <= 1 for d in again)


def test_optimize_analyzes_the_postgresql_tables_the_search_reads(
    pg_url: str, stores: Callable[[Settings], Store], now: Callable[[], datetime]
) -> None:
    settings = make_settings(pg_url)
    store = stores(settings)
    indexes = [i for source in search_index.SOURCES for i in search_index.pg_indexes(source)]
    assert "ix_tickets_account_words" in indexes

    def folded(names: list[str]) -> dict[str, int]:
        """Per index, the pages folded in from its pending list now: none, once
        ``optimize`` has folded them all. (It folds them for good, whatever the
        transaction does, as autovacuum would.)"""
        with store.engine.begin() as conn:
            clean = text("SELECT gin_clean_pending_list(CAST(:index AS regclass))")
            return {i: conn.execute(clean, {"index": i}).scalar_one() for i in names}

    for n in range(3):
        deliver(store, settings, build(subject=f"Ticket {n}", body="certificate"), now)
    assert folded(["ix_tickets_account_words"])["ix_tickets_account_words"] > 0  # new rows wait
    for n in range(3, 6):
        deliver(store, settings, build(subject=f"Ticket {n}", body="certificate"), now)
    done = maintenance.optimize(store)
    assert [d.source for d in done] == list(search_index.SOURCES)
    assert folded(indexes) == dict.fromkeys(indexes, 0)
    with store.engine.connect() as conn:
        analyzed = conn.execute(
            text(
                "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema()"
                " AND last_analyze IS NOT NULL"
            )
        ).scalars()
        assert set(search_index.SOURCES) <= set(analyzed)
    assert len(_found(store, "certificate")) == 6


def test_the_command_says_what_it_merged(cli: Callable[..., Result]) -> None:
    assert cli("db", "upgrade").exit_code == 0
    first = cli("db", "optimize")
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert [line.split(":")[0] for line in lines] == list(search_index.SOURCES)
    assert all("nothing to merge" in line for line in lines), lines
