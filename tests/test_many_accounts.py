"""A desk with many customer accounts: a ticket list, a ticket's page, `mailgate stats`
and the agent's pages read the names of the accounts at hand, not every account; the
account filters list the names up to db.names.LISTED_NAMES and ask for one typed past
it. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select

from mailgate.db import names, queries, stats
from mailgate.db.models import Customer, Ticket
from tests.web_support import Site, make_site, sign_in_agent


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url)
    yield s
    s.store.engine.dispose()


def _add_accounts(site: Site, count: int) -> None:
    with site.store.transaction() as session:
        session.add_all(
            Customer(name=f"Z account {i:04}", domains=[f"z{i}.test"], addresses=[], admins=[])
            for i in range(count)
        )


def _reads_of_customers(site: Site, run: Any) -> list[str]:
    """The statements ``run`` sends that read the customers table."""
    statements: list[str] = []

    def seen(*args: Any) -> None:  # (conn, cursor, statement, ...)
        statements.append(args[2])

    event.listen(site.store.engine, "before_cursor_execute", seen)
    try:
        run()
    finally:
        event.remove(site.store.engine, "before_cursor_execute", seen)
    return [s for s in statements if re.search(r"\bFROM customers\b", s)]


def test_lists_pages_and_stats_read_only_the_accounts_at_hand(site: Site) -> None:
    _add_accounts(site, names.LISTED_NAMES + 5)
    with site.store.transaction() as session:
        numbers = list(session.scalars(select(Ticket.number).order_by(Ticket.id)))

    def listed() -> None:
        with site.store.transaction() as session:
            rows = queries.summaries(session, session.scalars(select(Ticket)))
            assert {r["customer"] for r in rows} == {"Acme", "Globex"}
            shown = queries.show_ticket(session, numbers[0])
            assert shown["customer"] == "Acme"
            figures = stats.compute(
                session, settings=site.settings, now=site.clock(), since_days=30
            )
            assert set(figures["open"]["by_customer"]) == {"Acme", "Globex"}
            assert set(figures["opened"]["by_customer"]) == {"Acme", "Globex"}
            one = stats.compute(
                session, settings=site.settings, now=site.clock(), since_days=30, customer="Globex"
            )
            assert set(one["open"]["by_customer"]) == {"Globex"}

    reads = _reads_of_customers(site, listed)
    # Each one asks for ids or a name: none reads every account.
    assert reads and all("WHERE" in s for s in reads), reads


def test_the_account_filters_ask_for_a_typed_name_past_the_listed_many(site: Site) -> None:
    client = sign_in_agent(site)
    for path in ("/agent", "/agent/reports"):
        page = client.get(path).text
        assert '<select id="customer"' in page and '<option value="Globex"' in page
    _add_accounts(site, names.LISTED_NAMES)
    for path in ("/agent?customer=Globex", "/agent/reports?customer=Globex"):
        page = client.get(path)
        assert page.status_code == 200, page.text
        assert '<select id="customer"' not in page.text
        assert '<input id="customer" name="customer" maxlength="255" value="Globex">' in page.text
