"""Search's ways of ranking (mailgate/db/search.py) give the same tickets in the same
order as scoring every ticket: bounded by a rare term, by a customer's visible tickets,
or ranked from the newest tickets back when every term is in many. SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, func, select

from mailgate.db import search, search_probe, search_statements
from mailgate.db.models import Ticket
from mailgate.web import access
from tests.mail import build
from tests.search_support import customer_finds, found, returns_of, search_site
from tests.web_support import Site

site_fixture = pytest.fixture(name="site")(search_site)


def test_many_visible_tickets_are_searched_the_other_way_alike(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past search.LOOKED_UP_DIRECTLY visible tickets the search ranks the customer's
    tickets from the newest back (their condition keeping what the index finds to
    theirs), instead of looking up each visible ticket's rows: the same answers."""
    queries = [
        ("boss@acme.test", "acme"),
        ("carol@acme.test", "grumpy"),
        ("dave@acme.test", "printer"),
    ]
    few = [customer_finds(site, email, query) for email, query in queries]
    assert few == [[site.numbers["dave"], site.numbers["carol"]], [], []]
    monkeypatch.setattr(search, "LOOKED_UP_DIRECTLY", 0)
    assert [customer_finds(site, email, query) for email, query in queries] == few


def test_a_rare_term_bounds_the_search_with_the_same_answers(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A term found in few rows everywhere bounds the search to its tickets; with the
    bound always, never (the probe reads a row at most), or for few visible tickets,
    the answers and their order are the same."""
    carol, dave, eve = (site.numbers[k] for k in ("carol", "dave", "eve"))
    queries = ["invoice 7", "acme printer", "acme test", "room 4 fire", "acme zebra", "vpn 9am"]
    plain = [found(site, query) for query in queries]
    assert plain == [[eve], [carol], [dave, carol], [carol], [], [dave]]
    staff = customer_finds(site, "boss@acme.test", "acme test")
    assert staff == [dave, carol]
    assert customer_finds(site, "dave@acme.test", "acme test") == [dave]
    monkeypatch.setattr(search, "LOOKED_UP_DIRECTLY", 0)  # a customer's search probes too
    for probe in (4, 1, 4000):
        monkeypatch.setattr(search_probe, "PROBE_ROWS", probe)
        assert [found(site, query) for query in queries] == plain, probe
        assert customer_finds(site, "boss@acme.test", "acme test") == staff
        assert customer_finds(site, "dave@acme.test", "acme test") == [dave]
        assert customer_finds(site, "chief@globex.test", "invoice 7") == [eve]


def test_terms_in_many_tickets_are_ranked_from_the_newest_alike(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When every term is in many tickets ("error" in all of them) the search scores the
    newest tickets first and stops once no older one can make the page: the same
    tickets in the same order as scoring them all, on every page, for staff and for a
    customer who may see many tickets; and it stops early when it can."""
    carol, dave, eve = (site.numbers[k] for k in ("carol", "dave", "eve"))
    fred = site.ingest(build(sender="Fred <fred@acme.test>", subject="Toner", body="printer fire"))
    gina = site.ingest(build(sender="Gina <gina@acme.test>", subject="Printer again", body="x"))
    queries = ["acme", "test", "printer", "acme printer", "fire", "acme test", "zebra", "vpn"]
    pages = [(0, 50), (0, 1), (1, 1), (2, 1), (3, 2), (1, 3), (9, 1)]
    newest_first, all_in_subjects = search._newest_first, search._all_in_subjects
    monkeypatch.setattr(search, "_all_in_subjects", lambda *args, **kwargs: None)  # score all
    monkeypatch.setattr(search, "_newest_first", lambda *args, **kwargs: None)
    plain = {(q, o, n): found(site, q, offset=o, limit=n) for q in queries for o, n in pages}
    assert plain[("test", 0, 50)] == [gina, fred, eve, dave, carol]  # every ticket
    assert plain[("printer", 0, 50)] == [gina, carol, fred]  # subjects first
    assert plain[("acme printer", 1, 3)] == [carol, fred]
    boss = customer_finds(site, "boss@acme.test", "acme test")

    def boss_pages() -> list[list[int]]:
        """Boss's search, a ticket a page: more visible tickets than a page shows."""
        with site.store.transaction() as session:
            visible = access.customer_scope(session, "boss@acme.test")
            return [
                [
                    t.number or 0
                    for t in search.search(
                        session, q, within=visible, internal=False, offset=o, limit=1
                    )
                ]
                for q in ("acme", "test", "printer", "acme printer")
                for o in range(4)
            ]

    boss_plain = boss_pages()
    assert boss_plain[:4] == [[gina], [fred], [dave], [carol]]
    scans = returns_of(monkeypatch, search, "_newest_first", newest_first)
    monkeypatch.setattr(search, "_all_in_subjects", all_in_subjects)
    # (PROBE_ROWS, SCAN_FIRST, SCAN_MOST, RANGE_ROWS): with no rows read as a range
    # (SQLite), every row after a ticket's first is asked one by one.
    settings = (
        (1, 1, 100, 64),
        (2, 1, 100, 0),
        (1, 2, 100, 64),
        (1, 1, 1, 0),
        (3, 4096, 100, 64),
        (4000, 1, 100, 0),
    )
    for probe, first, most, range_rows in settings:
        monkeypatch.setattr(search_probe, "PROBE_ROWS", probe)
        monkeypatch.setattr(search, "SCAN_FIRST", first)
        monkeypatch.setattr(search, "SCAN_MOST", most)
        monkeypatch.setattr(search_statements, "RANGE_ROWS", range_rows)
        again = {(q, o, n): found(site, q, offset=o, limit=n) for q in queries for o, n in pages}
        assert again == plain, (probe, first, most, range_rows)
        assert customer_finds(site, "boss@acme.test", "acme test") == boss
        monkeypatch.setattr(search, "LOOKED_UP_DIRECTLY", 0)  # boss's tickets, newest first
        assert boss_pages() == boss_plain, (probe, first, most, range_rows)
        monkeypatch.setattr(search, "LOOKED_UP_DIRECTLY", 100)
    assert any(scan is not None for scan in scans), "the newest-first ranking never ran"
    if not site.store.is_sqlite:
        # PostgreSQL's statistics tell a common word without reading its rows: the same
        # answers once ANALYZE has seen these words in a row or more (PROBE_ROWS 1).
        with site.store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        search_probe.forget_statistics()  # kept a minute; these are new
        told = returns_of(monkeypatch, search_probe, "_common_by_statistics")
        monkeypatch.setattr(search_probe, "PROBE_ROWS", 1)
        monkeypatch.setattr(search, "SCAN_FIRST", 1)
        monkeypatch.setattr(search, "SCAN_MOST", 100)
        again = {(q, o, n): found(site, q, offset=o, limit=n) for q in queries for o, n in pages}
        assert again == plain
        assert any(told) and not all(told)  # "acme" is common, "zebra" is in no row
    # Probed best first, stopping at a common one.
    weights = list(search_statements.WEIGHTS.values())
    assert (
        list(search_statements.WEIGHTS) == list(search_statements.sources(True))
        and weights == sorted(weights)[::-1]
    )
    # "acme" is in four tickets; the newest, Gina's, scores the most a ticket can.
    scored: list[int] = []
    ranked = search.ranked

    def counted(*args: Any, **kwargs: Any) -> Any:
        scored.extend(kwargs["within"] or [])
        return ranked(*args, **kwargs)

    monkeypatch.setattr(search, "ranked", counted)
    assert found(site, "acme", limit=1) == [gina]  # the newest with "acme" in its requester
    assert scored == []  # ...needs no scoring: no ticket can score more
    monkeypatch.setattr(search, "_all_in_subjects", lambda *args, **kwargs: None)
    monkeypatch.setattr(search_probe, "PROBE_ROWS", 1)
    monkeypatch.setattr(search, "SCAN_FIRST", 1)
    monkeypatch.setattr(search, "SCAN_MOST", 100)
    assert found(site, "acme", limit=1) == [gina]
    with site.store.transaction() as session:
        tickets = session.scalar(select(func.count()).select_from(Ticket))
        ids = {number: id_ for number, id_ in session.execute(select(Ticket.number, Ticket.id))}
    assert len(scored) == 1 < tickets  # Gina's alone: no probe row is scored ahead of it
    # "printer" is in two subjects, Gina's the newest, and in more messages than a probe
    # reads: the tickets found by subject are scored newest first, and Gina's, scoring
    # more than any ticket found only by message can (Hank's, newer), is all a page needs.
    hank = site.ingest(build(sender="hank@acme.test", subject="Jam", body="printer, printer"))
    probed = returns_of(monkeypatch, search, "probe")
    monkeypatch.setattr(search_probe, "PROBE_ROWS", 3)
    assert found(site, "printer") == [gina, carol, hank, fred]
    scored.clear()
    assert found(site, "printer", limit=1) == [gina]
    assert probed[-1].only is None and probed[-1].known == {ids[gina], ids[carol]}
    assert scored == [ids[gina]]
    # A condition no ticket found meets (a status none has) is asked of the tickets'
    # own rows before any is scored.
    scored.clear()
    with site.store.transaction() as session:
        assert search.search(session, "printer", where=[Ticket.status == "Nowhere"]) == []
    assert scored == []


def test_a_word_common_elsewhere_is_probed_within_the_customers_tickets(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer's search probes the tickets' own rows within what they may see: the
    account's tickets from the index (SQLite: its account column), theirs by their
    address's words, and those they take part in. "printer", in more subjects than a
    probe reads but in one of Acme's, then leaves none of Acme's other tickets a score
    as by subject, and the tickets the probes did not find are looked for in the
    messages alone; the answers are those of scoring every ticket, on every page."""
    carol = site.numbers["carol"]
    for i in range(3):
        site.ingest(build(sender=f"p{i}@globex.test", subject=f"Printer {i}", body="paper"))
    dave = site.ingest(build(sender="dave@acme.test", subject="Toner", body="printer ink"))

    def boss_finds(query: str, offset: int = 0, limit: int = 50) -> list[int]:
        with site.store.transaction() as session:
            visible = access.customer_scope(session, "boss@acme.test")
            found = search.search(
                session, query, within=visible, internal=False, offset=offset, limit=limit
            )
            return [t.number or 0 for t in found]

    monkeypatch.setattr(search, "LOOKED_UP_DIRECTLY", 0)  # ranked from the newest back
    queries = [("printer", 0, 50), ("printer", 0, 1), ("printer", 1, 1), ("paper", 0, 50)]
    newest_first, all_in_subjects = search._newest_first, search._all_in_subjects
    monkeypatch.setattr(search, "_all_in_subjects", lambda *args, **kwargs: None)  # score all
    monkeypatch.setattr(search, "_newest_first", lambda *args, **kwargs: None)
    plain = [boss_finds(*query) for query in queries]
    assert plain == [[carol, dave], [carol], [dave], []]
    monkeypatch.setattr(search, "_newest_first", newest_first)
    probes = returns_of(monkeypatch, search, "probe")
    monkeypatch.setattr(search_probe, "PROBE_ROWS", 2)  # "printer" is in 4 subjects
    assert [boss_finds(*query) for query in queries] == plain
    assert probes and all(p.ceiling < search_statements.WEIGHTS["tickets"] for p in probes)
    # Common in the messages alone: a ticket the probes did not find is looked for there.
    assert probes[0].unprobed == {"printer": ["ticket_messages"]}
    with site.store.transaction() as session:
        everyone = search.probe(session, site.store.is_sqlite, ["printer"], internal=False)
    assert everyone.ceiling == search_statements.WEIGHTS["tickets"]  # common among all
    # The probe, run first for a customer, knows the only Acme ticket with "printer" in
    # its subject: fewer than a page of 50, so the newest subjects are not read for it.
    with site.store.transaction() as session:
        carol_id = session.scalar(select(Ticket.id).where(Ticket.number == carol))
    calls: list[tuple[Any, int]] = []  # (what it returned, statements it ran)

    def counted(*args: Any, **kwargs: Any) -> Any:
        ran: list[str] = []

        def seen(*event_args: Any) -> None:
            ran.append(event_args[2])

        event.listen(site.store.engine, "before_cursor_execute", seen)
        try:
            calls.append((all_in_subjects(*args, **kwargs), 0))
        finally:
            event.remove(site.store.engine, "before_cursor_execute", seen)
        calls[-1] = (calls[-1][0], len(ran))
        return calls[-1][0]

    monkeypatch.setattr(search, "_all_in_subjects", counted)
    assert boss_finds("printer") == plain[0]
    assert calls == [(None, 0)]
    assert boss_finds("printer", 0, 1) == plain[1]  # a page of one: that ticket is read
    assert calls[-1] == ([carol_id], 1)
    assert [boss_finds(*query) for query in queries] == plain
    if not site.store.is_sqlite:
        # PostgreSQL's statistics calling it common among all tickets (as at a million):
        # probed within Acme's tickets all the same, and the sources after them too.
        common = {"tickets"}
        monkeypatch.setattr(search_probe, "_common_by_statistics", lambda *args: common)
        probes.clear()
        assert [boss_finds(*query) for query in queries] == plain
        assert probes[0].unprobed == {"printer": ["ticket_messages"]}


def test_a_customers_search_keeps_to_a_condition_besides_their_scope(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer's search with a condition of its own (not the product's portal today,
    but the function takes one): the tickets read from the customer's scope newest first
    are scored only where they meet it, on every way of ranking."""
    carol, dave = site.numbers["carol"], site.numbers["dave"]

    def boss_finds(query: str, limit: int = 50) -> list[int]:
        with site.store.transaction() as session:
            visible = access.customer_scope(session, "boss@acme.test")
            found = search.search(
                session,
                query,
                where=[Ticket.number != dave],
                within=visible,
                internal=False,
                limit=limit,
            )
            return [t.number or 0 for t in found]

    assert boss_finds("acme") == [carol]
    monkeypatch.setattr(search, "LOOKED_UP_DIRECTLY", 0)  # from the newest back
    for probe in (1, 4000):  # "acme" common everywhere: the scope is read and scored
        monkeypatch.setattr(search_probe, "PROBE_ROWS", probe)
        monkeypatch.setattr(search, "SCAN_FIRST", 1)
        assert boss_finds("acme") == [carol], probe
        assert boss_finds("acme", limit=1) == [carol], probe


def test_a_page_the_first_batch_settles_reads_no_ticket_twice(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer's word in every ticket of theirs, ranked from the newest back: the
    first batch scored, when no larger than the page, reads its tickets with their
    scores, so a page it settles is shown without reading them again (a page of 2 scores
    a first batch of SCAN_FIRST, and reads its 2 after). The answers are those of
    scoring every ticket."""
    for i in range(4):
        site.ingest(build(sender="boss@acme.test", subject=f"Toner {i}", body="toner low"))
    monkeypatch.setattr(search, "LOOKED_UP_DIRECTLY", 0)  # ranked from the newest back
    monkeypatch.setattr(search_probe, "PROBE_ROWS", 1)  # "toner" common everywhere

    def boss_finds(limit: int) -> tuple[list[int], list[str]]:
        ran: list[str] = []

        def seen(*event_args: Any) -> None:
            ran.append(event_args[2])

        event.listen(site.store.engine, "before_cursor_execute", seen)
        try:
            with site.store.transaction() as session:
                visible = access.customer_scope(session, "boss@acme.test")
                rows = search.search(session, "toner", within=visible, internal=False, limit=limit)
                numbers = [t.number or 0 for t in rows]
        finally:
            event.remove(site.store.engine, "before_cursor_execute", seen)
        # A statement reading whole tickets by id alone: the page read again.
        again = [s for s in ran if s.lstrip().startswith("SELECT tickets.id, tickets.number")]
        return numbers, [s for s in again if "JOIN" not in s]

    newest_first = search._newest_first
    monkeypatch.setattr(search, "_newest_first", lambda *args, **kwargs: None)  # score all
    plain = {limit: boss_finds(limit)[0] for limit in (2, 50)}
    monkeypatch.setattr(search, "_newest_first", newest_first)
    monkeypatch.setattr(search, "_all_in_subjects", lambda *args, **kwargs: None)
    assert len(plain[2]) == 2 and len(plain[50]) == 4
    for limit, reads in ((2, 1), (50, 0)):
        numbers, read_again = boss_finds(limit)
        assert numbers == plain[limit]
        assert len(read_again) == reads, read_again
