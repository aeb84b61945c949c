"""PostgreSQL's search indexes make punctuation spaces with one regexp_replace()
(migration 0025), not translate(), which compares each character of a text with all 31
in turn: the same words, at a quarter of the cost or less on every write and every row a
search checks again. The words must be exactly the same, or a search would find other tickets
after the migration than before."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import sqlalchemy as sa

from mailgate.db import search_index
from mailgate.db.store import Store
from tests.test_migrations_data import _ROWS_BEFORE_SEARCH

_TRANSLATED = (
    "translate(:text, '"
    + search_index.PUNCTUATION.replace("'", "''")
    + "', '"
    + search_index.SPACES
    + "')"
)


def _texts(count: int) -> list[str]:
    """Texts of punctuation, ASCII and other letters, digits and spaces, mixed."""
    rng = random.Random(25)  # noqa: S311 - reproducible texts, not a secret
    alphabet = search_index.PUNCTUATION + "%aZ09 \t\n" + "éßΣςİı€😀\\"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(count)]


def test_regexp_gives_the_text_translate_gave(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            replaced = sa.text(f"SELECT {search_index.pg_words(':text')}")
            translated = sa.text(f"SELECT {_TRANSLATED}")
            for text in _texts(300):
                expected = conn.execute(translated, {"text": text}).scalar_one()
                assert conn.execute(replaced, {"text": text}).scalar_one() == expected, text
            # One that the test above would pass with an identity "replacement": the
            # characters do become spaces.
            assert conn.execute(replaced, {"text": "a.b@c"}).scalar_one() == "a b c"
    finally:
        engine.dispose()


def _plan(conn: sa.Connection, source: str, term: str, *, vector: str | None = None) -> str:
    """The plan of a search for ``term`` in ``source`` as the search spells it
    (``pg_match``), or with ``vector`` (an older revision's) in its place."""
    from mailgate.db.search_statements import pg_match

    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    query = sa.select(sa.literal_column("id")).select_from(sa.table(source))
    sql = str(
        query.where(pg_match(source, term)).compile(conn, compile_kwargs={"literal_binds": True})
    )
    if vector is not None:
        sql = sql.replace(search_index.pg_vector(source), vector)
    return " ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))


def _index_expression(conn: sa.Connection, source: str) -> str:
    """What ``source``'s search index holds, as its definition spells it."""
    definition = conn.execute(
        sa.text("SELECT pg_get_indexdef(CAST(:name AS regclass))"),
        {"name": search_index.pg_index(source)},
    ).scalar_one()
    return str(definition).split("USING gin ", 1)[1]


def _vectors(store: Store) -> dict[str, list[str]]:
    """Each source's rows' vectors, read by the expression its index has now."""
    found = {}
    with store.engine.connect() as conn:
        for source in search_index.SOURCES:
            expression = _index_expression(conn, source)
            rows = conn.exec_driver_sql(
                f"SELECT CAST({expression} AS text) FROM {source} ORDER BY id"  # noqa: S608
            )
            found[source] = list(rows.scalars())
    return found


def _rows_before_search(store: Store) -> None:
    """0016's rows, with a message of punctuation, digits and an accent."""
    with store.engine.begin() as conn:
        for statement in _ROWS_BEFORE_SEARCH:
            conn.execute(sa.text(statement), {"at": datetime(2026, 1, 5, tzinfo=UTC)})
        conn.execute(
            sa.text("UPDATE ticket_messages SET body_text = :body WHERE id = 1"),
            {"body": "Mail ann@old.test: report-2026.pdf isn't there (see [1])! Ça va?"},
        )


def _search_indexes(conn: sa.Connection) -> list[str]:
    """The definitions of the four search indexes of the test's schema."""
    definitions = conn.execute(
        sa.text(
            "SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'ix_%_search'"
            " AND schemaname = current_schema()"
        )
    )
    found = list(definitions.scalars())
    assert len(found) == len(search_index.SOURCES), found
    return found


def test_0025_indexes_the_same_words_there_and_back(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        store.upgrade("0024_customer_keys")
        _rows_before_search(store)
        before = _vectors(store)
        assert "'2026':" in before["ticket_messages"][0]
        store.upgrade("0025_search_words_by_regexp")
        with store.engine.begin() as conn:
            indexes = _search_indexes(conn)
            assert all("regexp_replace(" in d and "translate(" not in d for d in indexes)
            expression = _index_expression(conn, "ticket_messages")
            plan = _plan(conn, "ticket_messages", "2026.pdf", vector=expression)
            assert "ix_ticket_messages_search" in plan
        assert _vectors(store) == before
        store.downgrade("0024_customer_keys")
        with store.engine.connect() as conn:
            indexes = _search_indexes(conn)
            assert all("translate(" in d and "regexp_replace(" not in d for d in indexes)
        assert _vectors(store) == before
    finally:
        store.engine.dispose()


def test_0026_keeps_a_messages_words_in_a_column_there_and_back(pg_url: str) -> None:
    """Migration 0026: each message's vector kept in ``message_words``, the same words
    its index held, kept current by the database as a body changes; the search's
    statements use the index on it. And back: the column gone, the index as before."""
    store = Store(pg_url)
    try:
        store.upgrade("0025_search_words_by_regexp")
        _rows_before_search(store)
        before = _vectors(store)
        store.upgrade("0026_message_words")
        with store.engine.begin() as conn:
            assert _index_expression(conn, "ticket_messages") == "(message_words)"
            assert "ix_ticket_messages_search" in _plan(conn, "ticket_messages", "2026.pdf")
        assert _vectors(store) == before
        with store.engine.connect() as conn:
            conn.exec_driver_sql(
                "UPDATE ticket_messages SET body_text = 'Zebra-crossing' WHERE id = 1"
            )
            kept = conn.exec_driver_sql(
                "SELECT message_words::text FROM ticket_messages WHERE id = 1"
            )
            assert kept.scalar_one() == "'crossing':2 'zebra':1"
            conn.rollback()
        store.downgrade("0025_search_words_by_regexp")
        with store.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("ticket_messages")}
            assert "message_words" not in columns and "body_text" in columns
            assert "to_tsvector(" in _index_expression(conn, "ticket_messages")
        assert _vectors(store) == before
    finally:
        store.engine.dispose()


def test_an_accounts_words_are_one_list_of_their_own_index(pg_url: str) -> None:
    """0027: each word of a ticket qualified by its account, in an index of its own: a
    word is found in an account's tickets alone (and in any of several accounts'), a
    ticket of no account in none, a ticket moved in its new account's; a word too long
    for PostgreSQL's 2,047 bytes once qualified is cut, and its ticket is written; the
    probe's statement reads that index."""
    from mailgate.db.search_statements import pg_account_match

    store = Store(pg_url)
    long_word = "é" * 1023 + "x"  # 2,047 bytes: the longest word PostgreSQL keeps
    subjects = {1: (5, "Invoice overdue"), 2: (6, "Invoice"), 3: (None, "Invoice"), 4: (5, "")}
    try:
        store.upgrade()
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO customers (id, name, domains, addresses, admins, language) "
                "VALUES (5, 'Acme', '[]', '[]', '[]', ''), (6, 'Globex', '[]', '[]', '[]', '')"
            )
            for ticket, (account, subject) in subjects.items():
                conn.execute(
                    sa.text(
                        "INSERT INTO tickets (id, number, customer_id, requester, "
                        "requester_name, subject, type, priority, status, language, tags, "
                        "created_at, updated_at) VALUES (:id, :id, :account, 'ann@old.test', "
                        "'', :subject, 'General', 'Normal', 'New', 'en', '[]', :at, :at)"
                    ),
                    {
                        "id": ticket,
                        "account": account,
                        "subject": subject or f"{long_word} Printer",
                        "at": datetime(2026, 1, 5, tzinfo=UTC),
                    },
                )

        def found(term: str, *accounts: int) -> list[int]:
            with store.engine.connect() as conn:
                query = sa.select(sa.literal_column("id")).select_from(sa.table("tickets"))
                rows = conn.execute(query.where(pg_account_match(term, accounts)))
                return sorted(rows.scalars())

        assert found("invoice", 5) == [1] and found("Invoice", 6) == [2]
        assert found("invoice", 5, 6) == [1, 2] and found("invoice", 7) == []
        assert found("overdue invoice", 5) == [1] and found("overdue invoice", 6) == []
        assert found("printer", 5) == [4] and found("5", 5) == [] and found("@5", 5) == []
        assert found(long_word[:200], 5) == []  # cut to 500 characters: no longer a word
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE tickets SET customer_id = 6 WHERE id = 1")
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            query = sa.select(sa.literal_column("id")).select_from(sa.table("tickets"))
            sql = str(
                query.where(pg_account_match("invoice", (5,))).compile(
                    conn, compile_kwargs={"literal_binds": True}
                )
            )
            plan = " ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
            assert "Bitmap Index Scan on ix_tickets_account_words" in plan, plan
        assert found("invoice", 5) == [] and found("invoice", 6) == [1, 2]
        with store.engine.connect() as conn:
            longest = conn.exec_driver_sql(
                f"SELECT max(octet_length(word)) FROM tickets, "  # noqa: S608 - constants
                f"unnest(tsvector_to_array({search_index.pg_account_words()})) AS word"
            ).scalar_one()
        assert 1000 < longest < 2047
    finally:
        store.engine.dispose()
