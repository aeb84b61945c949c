"""Each migration since issue 20 upgrades a database with rows in it and keeps them:
tokens (0014), to-dos (0015), the search index (0016), helpers and departments (0017),
suppliers (0018), notice channels (0019), the tickets' accounts in the search index
(0022); where it has a downgrade, back again. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from mailgate.db import search_index
from mailgate.db.store import Store

_ROWS_BEFORE_SEARCH = (
    "INSERT INTO tickets (id, number, requester, requester_name, subject, type, priority, "
    "status, language, tags, created_at, updated_at) VALUES "
    "(1, 1, 'ann@old.test', 'Ann Oldtimer', 'Heating broken', 'General', 'Normal', 'New', "
    "'en', '[]', :at, :at), "
    "(2, 2, 'bob@old.test', '', 'Other', 'General', 'Normal', 'New', 'en', '[]', :at, :at)",
    "INSERT INTO ticket_messages (id, ticket_id, direction, author_email, author_name, "
    '"to", cc, subject, body_text, body_html, body_reply, message_id, content_sha256, '
    'in_reply_to, "references", thread_method, after_close, screening, created_at) VALUES '
    "(1, 1, 'inbound', 'ann@old.test', '', '[]', '[]', 'Heating broken', "
    "'The radiator is cold.', '', 'The radiator is cold.', '', '', '[]', '[]', 'new', "
    "FALSE, '{}', :at), "
    "(2, 1, 'note', 'agent@example.com', '', '[]', '[]', '', 'A plumber owes us.', '', '', "
    "'', '', '[]', '[]', 'portal', FALSE, '{}', :at)",
    "INSERT INTO ticket_participants (id, ticket_id, email, role) VALUES "
    "(1, 1, 'ann@old.test', 'requester'), (2, 2, 'carl.cc@old.test', 'cc')",
    "INSERT INTO attachments (id, ticket_message_id, filename, content_type, size, sha256, "
    "content_id, inline, omitted) VALUES (1, 1, 'thermostat.jpg', 'image/jpeg', 1, '', '', "
    "FALSE, '')",
)


def _a_new_subject_is_indexed(conn: sa.Connection, ticket_id: int, subject: str) -> None:
    """Give ticket ``ticket_id`` a new ``subject``: on SQLite, its search triggers index
    it (a table rebuilt by a migration would have lost them). PostgreSQL indexes an
    expression: no triggers."""
    update = sa.text("UPDATE tickets SET subject = :subject WHERE id = :id")
    conn.execute(update, {"subject": subject, "id": ticket_id})
    if conn.dialect.name == "sqlite":
        table = search_index.fts_table("tickets")
        match = sa.text(f"SELECT rowid FROM {table} WHERE {table} MATCH :word")  # noqa: S608
        assert list(conn.execute(match, {"word": subject.lower()}).scalars()) == [ticket_id]


def test_the_search_migration_indexes_the_rows_already_there(db_url: str) -> None:
    """0016_search indexes every ticket, message, participant and attachment already
    stored (and keeps up with a change after it, through any later migration); its
    downgrade takes the index away again."""
    from sqlalchemy.orm import Session

    from mailgate.db import search

    store = Store(db_url)
    try:
        store.upgrade("0015_todos")
        with store.engine.begin() as conn:
            for statement in _ROWS_BEFORE_SEARCH:
                conn.execute(sa.text(statement), {"at": datetime(2026, 1, 5, tzinfo=UTC)})
        store.upgrade()  # through 0016_search, and whatever follows (the search reads the models)

        def found(query: str, internal: bool = True) -> list[int]:
            with Session(store.engine) as session:
                return [t.id for t in search.search(session, query, internal=internal)]

        assert found("oldtimer") == found("radiator") == found("thermostat") == [1]
        assert found("plumber") == [1] and found("plumber", internal=False) == []
        assert found("carl.cc@old.test") == [2] and found("heating cold") == [1]
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE tickets SET subject = 'Boiler' WHERE id = 2"))
        assert found("boiler") == [2] and found("other") == []
        store.downgrade("0015_todos")
        with store.engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert not search_index.SEARCH_TABLES & set(inspector.get_table_names())
            indexes = {i["name"] for t in search_index.SOURCES for i in inspector.get_indexes(t)}
            assert not search_index.SEARCH_INDEXES & indexes
    finally:
        store.engine.dispose()


def test_0015_adds_todos_to_a_database_with_tickets_and_agents(db_url: str) -> None:
    """0015 (issue 22): from 0014 with a ticket, an agent and its history in place, the
    rows stay and a to-do can name them, or neither (a standalone one)."""
    store = Store(db_url)
    try:
        store.upgrade("0014_agent_tokens")
        at = "2026-01-05 09:30:00+00:00"
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO tickets (id, number, requester, requester_name, subject, "
                    "type, priority, status, language, tags, created_at, updated_at) VALUES "
                    "(7, 7, 'c@x.test', '', 's', 'General', 'Normal', 'New', 'en', '[]', "
                    ":at, :at)"
                ),
                {"at": at},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO agents (id, email, name, teams, away, active, "
                    "credential_generation) VALUES (3, 'ann@x.test', 'Ann', '[]', false, true, 0)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO history_events (ticket_id, at, actor, action, field, old, new, "
                    "detail) VALUES (7, :at, 'cli', 'status', 'status', 'New', 'Open', '{}')"
                ),
                {"at": at},
            )
        store.upgrade("0015_todos")
        with store.engine.begin() as conn:
            for ticket_id, agent_id in ((7, 3), (None, None)):
                conn.execute(
                    sa.text(
                        "INSERT INTO todos (ticket_id, title, assignee_id, due_at, created_by, "
                        "created_at) VALUES (:t, 'Call back', :a, :at, 'cli', :at)"
                    ),
                    {"t": ticket_id, "a": agent_id, "at": at},
                )
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT number FROM tickets")).scalars().all() == [7]
            assert conn.execute(sa.text("SELECT email FROM agents")).scalars().all() == [
                "ann@x.test"
            ]
            assert conn.execute(sa.text("SELECT count(*) FROM history_events")).scalar() == 1
            rows = conn.execute(
                sa.text("SELECT ticket_id, assignee_id, done_at FROM todos ORDER BY id")
            ).all()
            assert [tuple(r) for r in rows] == [(7, 3, None), (None, None, None)]
    finally:
        store.engine.dispose()


def test_0017_helpers_and_departments_and_back(db_url: str) -> None:
    """0017 (issue 22): from 0016 with tickets in place, they get no helpers (count 0)
    and the new tables take rows; its downgrade drops them and keeps the SQLite search
    triggers of 0016 (a table rebuild would lose them: a renamed subject unfound)."""
    store = Store(db_url)
    try:
        store.upgrade("0016_search")
        with store.engine.begin() as conn:
            for statement in _ROWS_BEFORE_SEARCH:
                conn.execute(sa.text(statement), {"at": datetime(2026, 1, 5, tzinfo=UTC)})
        store.upgrade("0017_helpers_departments")
        with store.engine.begin() as conn:
            counts = conn.execute(sa.text("SELECT helpers_count FROM tickets")).scalars().all()
            assert counts == [0, 0]
            conn.execute(
                sa.text("INSERT INTO teams (id, name, assignment, cap) VALUES (5, 't', 'none', 0)")
            )
            conn.execute(sa.text("INSERT INTO ticket_departments VALUES (1, 5)"))
        store.downgrade("0016_search")
        with store.engine.begin() as conn:
            assert "ticket_departments" not in sa.inspect(conn).get_table_names()
            _a_new_subject_is_indexed(conn, 2, "Boiler")
    finally:
        store.engine.dispose()


def test_0018_suppliers_and_back(db_url: str) -> None:
    """0018 (issue 22): from 0017 with tickets in place, they get no suppliers (count 0)
    and the new tables take rows; the SQLite search triggers of 0016 still index a
    change after it (no table rebuild), and its downgrade drops the tables again."""
    store = Store(db_url)
    try:
        store.upgrade("0017_helpers_departments")
        with store.engine.begin() as conn:
            for statement in _ROWS_BEFORE_SEARCH:
                conn.execute(sa.text(statement), {"at": datetime(2026, 1, 5, tzinfo=UTC)})
        store.upgrade("0018_suppliers")
        with store.engine.begin() as conn:
            counts = conn.execute(sa.text("SELECT suppliers_count FROM tickets")).scalars().all()
            assert counts == [0, 0]
            conn.execute(
                sa.text(
                    "INSERT INTO suppliers (id, name, addresses, language) "
                    "VALUES (3, 'Parts Co', '[\"orders@parts.test\"]', 'fr')"
                )
            )
            conn.execute(sa.text("INSERT INTO ticket_suppliers VALUES (1, 3)"))
            # As the index stood then: today's search reads what later migrations add.
            _a_new_subject_is_indexed(conn, 2, "Boiler")
        store.downgrade("0017_helpers_departments")
        with store.engine.begin() as conn:
            tables = sa.inspect(conn).get_table_names()
            assert "suppliers" not in tables and "ticket_suppliers" not in tables
            _a_new_subject_is_indexed(conn, 1, "Furnace")
    finally:
        store.engine.dispose()


def test_0014_keeps_the_tokens_there_as_integrations(db_url: str) -> None:
    """0014 (issue 20): a token made before it stays an integration's (no agent), and a
    token can then name an agent."""
    store = Store(db_url)
    try:
        store.upgrade("0013_activities")
        at = datetime(2026, 1, 5, tzinfo=UTC)
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO api_tokens (name, token_hash, created_at) "
                    "VALUES ('crm', :hash, :at)"
                ),
                {"hash": "a" * 64, "at": at},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO agents (id, email, name, teams, away, active, "
                    "credential_generation) VALUES (3, 'ann@x.test', 'Ann', '[]', false, true, 0)"
                )
            )
        store.upgrade("0014_agent_tokens")
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO api_tokens (name, token_hash, created_at, agent_id) "
                    "VALUES ('laptop', :hash, :at, 3)"
                ),
                {"hash": "b" * 64, "at": at},
            )
            rows = conn.execute(sa.text("SELECT name, agent_id FROM api_tokens ORDER BY name"))
            assert [tuple(r) for r in rows] == [("crm", None), ("laptop", 3)]
    finally:
        store.engine.dispose()


_NOTICE = (
    "INSERT INTO notices (id, kind, recipient, language, state, cause, message_id, "
    "in_reply_to, created_at, attempts, last_error, detail, rate_key) VALUES "
    "(:id, :kind, :recipient, 'en', 'pending', :cause, :cause, '', :at, 0, '', '{}', :recipient)"
)


def test_0019_notice_channels_and_back(db_url: str) -> None:
    """0019 (issue 24): the notices already there are mail (channel ""); a chat row names
    its channel; the downgrade drops the column and keeps the rows."""
    store = Store(db_url)
    at = datetime(2026, 1, 5, tzinfo=UTC)
    try:
        store.upgrade("0018_suppliers")
        with store.engine.begin() as conn:
            mail = {"id": 1, "kind": "acknowledgement", "recipient": "a@x.test", "cause": "m:1"}
            conn.execute(sa.text(_NOTICE), {**mail, "at": at})
        store.upgrade("0019_notice_channels")
        with store.engine.begin() as conn:
            chat = {"id": 2, "kind": "assigned", "recipient": "chat:desk", "cause": "m:2"}
            conn.execute(sa.text(_NOTICE), {**chat, "at": at})
            conn.execute(sa.text("UPDATE notices SET channel = 'desk' WHERE id = 2"))
            rows = conn.execute(sa.text("SELECT id, channel FROM notices ORDER BY id"))
            assert [tuple(r) for r in rows] == [(1, ""), (2, "desk")]
        store.downgrade("0018_suppliers")
        with store.engine.begin() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("notices")}
            assert "channel" not in columns
            assert conn.execute(sa.text("SELECT count(*) FROM notices")).scalar() == 2
    finally:
        store.engine.dispose()


def test_0022_0023_index_the_accounts_of_the_tickets_there_and_back(db_url: str) -> None:
    """0022, 0023 and 0027 (issue 23): the tickets' search index gets each ticket's
    account (SQLite: a column of the FTS5 table, 0022; PostgreSQL: each word qualified by
    the account, in an index of its own, 0027, after 0023's lexeme of the account), so an
    account admin's probe (search_probe._scoped_tickets) finds a word in their account's
    tickets from the index: for the tickets already there, and for a ticket moved to
    another account after it. The downgrades leave the text index working."""
    from sqlalchemy.orm import Session

    from mailgate.db.search_probe import _scoped_tickets
    from mailgate.db.search_statements import pg_account_match
    from mailgate.db.ticket_scope import TicketScope

    store = Store(db_url)
    sqlite = store.is_sqlite
    try:
        store.upgrade("0021_customer_tickets_newest")
        with store.engine.begin() as conn:
            for statement in _ROWS_BEFORE_SEARCH:
                conn.execute(sa.text(statement), {"at": datetime(2026, 1, 5, tzinfo=UTC)})
            conn.execute(
                sa.text(
                    "INSERT INTO customers (id, name, domains, addresses, admins, language) "
                    "VALUES (5, 'Acme', '[]', '[]', '[]', ''), (6, 'Globex', '[]', '[]', '[]', '')"
                )
            )
            conn.execute(sa.text("UPDATE tickets SET customer_id = 5"))
        store.upgrade("0023_tickets_search_account_pg")
        if not sqlite:
            store.upgrade("0027_tickets_account_words")  # what today's probe reads

        def in_account(account: int, word: str) -> list[int] | None:
            with Session(store.engine) as session:
                scope = TicketScope(address="boss@acme.test", accounts=(account,))
                return _scoped_tickets(session, sqlite, word, scope)

        assert in_account(5, "heating") == [1] and in_account(6, "heating") == []
        assert in_account(5, "5") == []  # the account's id is no word of its tickets
        assert in_account(5, "@5") == []  # ... nor its lexeme a term (PostgreSQL)
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE tickets SET customer_id = 6 WHERE id = 1"))
        assert in_account(5, "heating") == [] and in_account(6, "heating") == [1]
        if not sqlite:
            # Today's query repeats the index's expression to the letter, so the index
            # serves it.
            store.upgrade()
            with store.engine.begin() as conn:
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                query = sa.select(sa.literal_column("id")).select_from(sa.table("tickets"))
                query = query.where(pg_account_match("heating", (6,)))
                sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
                plan = " ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
                assert "Bitmap Index Scan on ix_tickets_account_words" in plan, plan
        store.downgrade("0021_customer_tickets_newest")
        with store.engine.begin() as conn:
            _a_new_subject_is_indexed(conn, 2, "Boiler")
    finally:
        store.engine.dispose()


def test_0024_gives_the_accounts_there_their_keys_and_back(db_url: str) -> None:
    """0024: the accounts already there get their addresses, admins and domains as keys
    (by the update trigger the migration adds), new ones get theirs from the insert
    trigger; the downgrade takes the table and the triggers away."""
    store = Store(db_url)
    try:
        store.upgrade("0023_tickets_search_account_pg")
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO customers (id, name, domains, addresses, admins, language) "
                    "VALUES (5, 'Acme', '[\"acme.test\"]', '[\"pat@else.test\"]', "
                    "'[\"boss@acme.test\"]', '')"
                )
            )
        store.upgrade("0024_customer_keys")
        keys = "SELECT value, kind, customer_id FROM customer_keys ORDER BY 1, 2"
        with store.engine.begin() as conn:
            assert [tuple(r) for r in conn.execute(sa.text(keys))] == [
                ("acme.test", "domain", 5),
                ("boss@acme.test", "admin", 5),
                ("pat@else.test", "address", 5),
            ]
            conn.execute(
                sa.text(
                    "INSERT INTO customers (id, name, domains, addresses, admins, language) "
                    "VALUES (6, 'Globex', '[\"globex.test\"]', '[]', '[]', '')"
                )
            )
            assert ("globex.test", "domain", 6) in [tuple(r) for r in conn.execute(sa.text(keys))]
        store.downgrade("0023_tickets_search_account_pg")
        with store.engine.begin() as conn:
            assert "customer_keys" not in sa.inspect(conn).get_table_names()
            conn.execute(sa.text("UPDATE customers SET domains = '[]' WHERE id = 5"))  # no trigger
    finally:
        store.engine.dispose()
