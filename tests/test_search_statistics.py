"""PostgreSQL's search and ANALYZE's statistics: read once a minute, not by every search,
and an address's tickets read from the lists of its rare words (search_probe)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event, select

from mailgate.db import search, search_probe
from mailgate.db.models import Ticket
from tests.mail import build
from tests.search_support import found, returns_of, search_site
from tests.web_support import Site


@pytest.fixture(name="pg_site")
def pg_site_fixture(pg_url: str) -> Iterator[Site]:
    yield from search_site(pg_url)


def test_postgresql_statistics_are_read_once_a_minute(
    pg_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL (SQLite probes every term): the search indexes' statistics are read by
    the first search and kept search_probe.STATISTICS_SECONDS, not read by every search;
    an ANALYZE since is seen once they are read again."""
    site = pg_site
    quokka = site.ingest(build(sender="zed@acme.test", subject="Quokka seen", body="In the hall"))
    statements: list[str] = []
    event.listen(site.store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    def reads() -> int:
        return len([s for s in statements if "pg_stats" in s])

    monkeypatch.setattr(search, "_all_in_subjects", lambda *args, **kwargs: None)
    monkeypatch.setattr(search_probe, "PROBE_ROWS", 1)
    search_probe.forget_statistics()
    told = returns_of(monkeypatch, search_probe, "_common_by_statistics")
    assert found(site, "quokka") == [quokka]
    assert reads() == 1 and "tickets" not in told[-1]  # not analysed since it came
    with site.store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    assert found(site, "quokka") == [quokka]
    assert reads() == 1 and "tickets" not in told[-1]  # kept: not read again
    monkeypatch.setattr(search_probe, "STATISTICS_SECONDS", 0.0)
    assert found(site, "quokka") == [quokka]
    assert reads() == 2 and "tickets" in told[-1]  # read again: ANALYZE has seen it


def test_an_address_is_read_from_its_rare_words_lists(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: an agent's newest tickets with an address in their own row are those
    the index lists for the words ANALYZE does not call common ("user1", not "mail" and
    "test", in nearly every requester), the phrase checked on them: the same tickets as
    reading them by every word, and not one with the words apart."""
    site = next(search_site(pg_url))
    try:
        asked = [
            site.ingest(build(sender=f"user{i % 3}@mail.test", subject=f"Ticket {i}", body="Hi"))
            for i in range(7)
        ]
        apart = site.ingest(build(sender="ops@mail.test", subject="user1 says: mail test"))
        with site.store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        search_probe.forget_statistics()
        monkeypatch.setattr(search_probe, "PROBE_ROWS", 4)  # "mail": 8 rows, "user1": 3
        with site.store.transaction() as session:
            assert search_probe.rare_words(session, "user1@mail.test", "tickets") == "user1"
            assert search_probe.rare_words(session, "mail.test", "tickets") is None
            # A message's words are counted in its stored vector's statistics.
            assert search_probe._statistics(session)["ticket_messages"]["hi"] >= 7
            ids = {number: id_ for number, id_ in session.execute(select(Ticket.number, Ticket.id))}
        rare = returns_of(monkeypatch, search, "_pg_rare_rows")
        wanted = [asked[i] for i in (4, 1)]  # user1's, newest first
        assert found(site, "user1@mail.test", limit=2) == wanted
        assert rare == [[ids[n] for n in wanted]]  # read from the list of "user1"
        assert apart not in found(site, "user1@mail.test")
        rare.clear()
        assert found(site, "mail.test", limit=2) == [apart, asked[6]]
        assert rare == [None]  # no rare word: the newest with every word, in order
        # More tickets with the rare words than are read unordered: in order instead.
        rare.clear()
        monkeypatch.setattr(search_probe, "PROBE_ROWS", 2)
        monkeypatch.setattr(search, "rare_words", lambda session, term, source: "user1")
        assert found(site, "user1@mail.test", limit=2) == wanted
        assert rare == [None]
        monkeypatch.setattr(search, "_pg_rare_rows", lambda *args, **kwargs: None)
        assert found(site, "user1@mail.test", limit=2) == wanted  # by every word: the same
    finally:
        site.store.engine.dispose()
