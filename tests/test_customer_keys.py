"""An account is found by an address it lists, its domain or an admin address through
``customer_keys``, which the database's triggers keep whichever path writes an account
(the directory, the config's sync, a plain UPDATE); and finding one reads the accounts
that list the address, not every account. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select, update

from mailgate.core.prepared import prepare
from mailgate.core.settings import CustomerSetting, Settings
from mailgate.db.directory import add_customer, customer_of
from mailgate.db.models import Customer, CustomerKey, Ticket
from mailgate.db.store import Store
from mailgate.inbound.intake import Envelope, Incoming, accept_many
from mailgate.tickets.mail_group import process_group
from mailgate.web.access import admin_of
from tests.builders import ready_store
from tests.conftest import fixed_clock, make_settings
from tests.mail import build


@pytest.fixture
def accounts(db_url: str) -> Iterator[tuple[Store, Settings]]:
    settings = make_settings(db_url)
    settings = dataclasses.replace(
        settings,
        customers=(
            CustomerSetting("Acme", domains=("acme.test",), admins=("boss@acme.test",)),
            CustomerSetting("Initech", domains=("initech.test",), addresses=("pat@else.test",)),
        ),
    )
    store = ready_store(settings)  # the config's sync writes the two accounts
    yield store, settings
    store.engine.dispose()


def _account(store: Store, email: str) -> str | None:
    with store.transaction() as session:
        found = customer_of(session, email)
        return found.name if found else None


def _admin_of(store: Store, email: str) -> list[str]:
    with store.transaction() as session:
        ids = admin_of(session, email)
        return [session.get(Customer, i).name for i in ids]  # type: ignore[union-attr]


def test_accounts_are_found_by_their_keys_as_they_change(
    accounts: tuple[Store, Settings],
) -> None:
    store, _ = accounts
    assert _account(store, "Joe@ACME.test") == "Acme"  # by domain, any case
    assert _account(store, "pat@else.test") == "Initech"  # by address
    assert _account(store, "boss@acme.test") == "Acme"
    assert _account(store, "joe@nowhere.test") is None
    assert _admin_of(store, "BOSS@acme.test") == ["Acme"]
    assert _admin_of(store, "joe@acme.test") == []
    with store.transaction() as session:
        # The directory's command: a second account listing Acme's domain, and the
        # address of someone at Acme directly, which beats any domain.
        add_customer(
            session, "Umbrella", domains=["acme.test"], addresses=["joe@acme.test"],
            admins=["boss@acme.test"], owner=None, language="",
        )  # fmt: skip
    assert _account(store, "joe@acme.test") == "Umbrella"  # listed directly
    assert _account(store, "ann@acme.test") == "Acme"  # the domain's older account
    assert _admin_of(store, "boss@acme.test") == ["Acme", "Umbrella"]
    with store.transaction() as session:  # a plain UPDATE and DELETE, no ORM
        session.execute(update(Customer).where(Customer.name == "Acme").values(domains=[]))
        session.execute(delete(Customer).where(Customer.name == "Initech"))
    assert _account(store, "ann@acme.test") == "Umbrella"
    assert _account(store, "pat@else.test") is None
    with store.transaction() as session:
        session.execute(update(Customer).values(language="de"))  # no list changed
        counted = select(CustomerKey.kind, func.count()).group_by(CustomerKey.kind)
        kinds = {kind: n for kind, n in session.execute(counted)}
    # Acme: its admin; Umbrella: its domain, address and admin. Initech's are gone.
    assert kinds == {"admin": 2, "domain": 1, "address": 1}


def test_only_strings_of_a_list_are_keys(accounts: tuple[Store, Settings]) -> None:
    store, _ = accounts
    with store.transaction() as session:
        session.add(Customer(name="Odd", domains=["odd.test", 7, None], addresses=[], admins=[]))
    assert _account(store, "a@odd.test") == "Odd"
    with store.transaction() as session:
        keys = session.scalars(select(CustomerKey.value).where(CustomerKey.value.in_(["7"])))
        assert list(keys) == []


def test_finding_an_account_reads_those_that_list_it(
    accounts: tuple[Store, Settings],
) -> None:
    """Among 400 accounts, finding one is one statement, which reads the keys' index and
    the accounts it names, never every account; a second look-up of the address in the
    same transaction reads nothing."""
    store, _ = accounts
    with store.transaction() as session:
        session.add_all(
            Customer(name=f"c{i}", domains=[f"d{i}.test"], addresses=[], admins=[f"a@d{i}.test"])
            for i in range(400)
        )
    statements: list[tuple[str, object]] = []

    def seen(*args: Any) -> None:  # (conn, cursor, statement, parameters, ...)
        statements.append((args[2], args[3]))

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        with store.transaction() as session:
            found = customer_of(session, "x@d123.test")
            again = customer_of(session, "X@d123.test")
            admin = admin_of(session, "a@d7.test")
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert found is not None and found.name == "c123" and again == found
    assert len(admin) == 1
    assert len(statements) == 2, statements  # the account, then the admin's accounts
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in statements:
            if store.is_sqlite:
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
                assert "SCAN customers" not in plan and "SCAN customer_keys" not in plan, plan
            else:
                cursor.execute("SET enable_seqscan = off")  # 400 rows: it would read them
                cursor.execute("EXPLAIN " + statement, parameters)
                plan = " | ".join(row[0] for row in cursor.fetchall())
                assert "Seq Scan" not in plan, plan
            assert "customer_keys" in plan, plan
    finally:
        raw.close()


def test_a_group_of_messages_looks_its_senders_accounts_up_at_once(
    accounts: tuple[Store, Settings],
) -> None:
    """A bulk import's group (tickets.mail_group.process_group) asks for its senders'
    accounts in one statement, and each message's ticket still gets its own account."""
    store, settings = accounts
    senders = ["ann@acme.test", "pat@else.test", "zed@nowhere.test", "bob@initech.test"]
    raws = [build(sender=s, subject=f"Help {i}") for i, s in enumerate(senders)]
    stored = accept_many(
        store,
        [Incoming(raw, Envelope()) for raw in raws],
        source="ingest",
        max_bytes=10**7,
        now=fixed_clock(),
    )
    jobs = [(a.inbound_id, prepare(raw, settings)) for a, raw in zip(stored, raws, strict=True)]  # type: ignore[union-attr]
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    results = process_group(store, jobs, settings=settings, now=fixed_clock())
    assert all(r is not None and r.outcome == "new_ticket" for r in results)
    assert len([s for s in statements if "customer_keys" in s]) == 1, statements
    with store.transaction() as session:
        found = session.execute(
            select(Ticket.requester, Customer.name)
            .outerjoin(Customer, Customer.id == Ticket.customer_id)
            .order_by(Ticket.id)
        )
        assert [tuple(row) for row in found] == [
            ("ann@acme.test", "Acme"),
            ("pat@else.test", "Initech"),
            ("zed@nowhere.test", None),
            ("bob@initech.test", "Initech"),
        ]
