"""Migrations: the same Alembic scripts build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mailgate.db import search_index
from mailgate.db.models import Base
from mailgate.db.store import Store, _head_from_files
from tests.databases import migrate, pg_schema


def test_upgrade_builds_exactly_the_models(db_url: str) -> None:
    """After `db upgrade` the database matches the models: no table or column left out of a migration."""
    store = Store(db_url)
    before, after = store.upgrade()
    assert before is None and after == store.head_revision()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": _not_search_index})
        diff = compare_metadata(context, Base.metadata)
    store.engine.dispose()
    assert diff == []


def _not_search_index(_object: Any, name: str | None, kind: str, *_: Any) -> bool:
    """The full-text index is the database's own, not a table of the models: FTS5 tables
    (SQLite), GIN indexes on expressions (PostgreSQL). test_a_new_database_gets_exactly_
    the_migrated_schema checks a new database gets it as the migrations build it."""
    if kind == "table":
        return name not in search_index.SEARCH_TABLES
    return kind != "index" or name not in search_index.SEARCH_INDEXES


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    """Upgrading an up-to-date database changes nothing."""
    store = Store(db_url)
    store.upgrade()
    assert store.upgrade() == (store.head_revision(), store.head_revision())
    store.engine.dispose()


def test_fresh_sqlite_file_is_migrated_on_first_use(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A new SQLite file needs no `db upgrade`: first use migrates it."""
    store = Store(f"sqlite:///{tmp_path / 'new' / 'm.db'}")
    store.ensure_schema()
    assert store.current_revision() == store.head_revision()
    store.engine.dispose()


def test_cli_db_upgrade_and_current(cli) -> None:  # type: ignore[no-untyped-def]
    """`mailgate db upgrade` then `db current` report the revision in words."""
    first = cli("db", "upgrade")
    assert first.exit_code == 0 and "upgraded from empty to" in first.output
    again = cli("db", "upgrade")
    assert "already at revision" in again.output
    current = cli("db", "current")
    assert "up to date" in current.output


@pytest.fixture
def fresh_db_url(db_url: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes more fresh databases of the same kind as ``db_url``."""
    made: list[Iterator[str]] = []

    def make() -> str:
        if db_url.startswith("sqlite"):
            return f"sqlite:///{tmp_path / f'other{len(made)}.db'}"
        made.append(pg_schema())
        return next(made[-1])

    yield make
    for schema in made:
        next(schema, None)  # dropped


@pytest.fixture
def other_db_url(fresh_db_url: Callable[[], str]) -> str:
    """A second fresh database of the same kind as ``db_url``."""
    return fresh_db_url()


def _sqlite_ddl(sql: str | None) -> Any:
    """A ``CREATE TABLE`` with its columns in order and its constraints as a set: SQLite
    keeps the text as written, a column added later is appended to it, and a table that
    Alembic rebuilt lists its constraints in another order."""
    match = re.fullmatch(r'CREATE TABLE "?(\w+)"? \((.*)\)', sql or "", re.DOTALL)
    if match is None:
        return sql
    parts, depth, start, body = [], 0, 0, match.group(2)
    for at, char in enumerate(body):  # split at the commas outside parentheses
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:at].strip())
            start = at + 1
    parts.append(body[start:].strip())
    constraint = re.compile(r"(PRIMARY KEY|FOREIGN KEY|UNIQUE|CHECK|CONSTRAINT)\b")
    columns = [p for p in parts if not constraint.match(p)]
    return (match.group(1), columns, sorted(p for p in parts if constraint.match(p)))


def _type(column: Any, engine: sa.Engine) -> str:
    # An FTS5 table's columns have no type (search_index): NullType has no DDL.
    if isinstance(column["type"], sa.types.NullType):
        return "untyped"
    return str(column["type"].compile(dialect=engine.dialect))


def _schema(url: str) -> dict[str, Any]:
    """Everything about a schema that a query or a write could notice."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            # The get_multi_ forms ask PostgreSQL once for all tables, not once per table.
            columns = inspector.get_multi_columns()
            keys = inspector.get_multi_pk_constraint()
            foreign = inspector.get_multi_foreign_keys()
            indexes = inspector.get_multi_indexes()
            unique = inspector.get_multi_unique_constraints()
            checks = inspector.get_multi_check_constraints()
            found: dict[str, Any] = {
                name: {
                    "columns": [
                        {**column, "type": _type(column, engine)} for column in columns[key]
                    ],
                    "primary key": keys[key],
                    "foreign keys": sorted(map(repr, foreign[key])),
                    "indexes": sorted(map(repr, indexes[key])),
                    "unique": sorted(map(repr, unique[key])),
                    "checks": sorted(map(repr, checks[key])),
                }
                for key in columns  # (schema, name): the schema is None, the default one
                for name in [key[1]]
            }
            found["revision"] = MigrationContext.configure(conn).get_current_revision()
            if engine.dialect.name == "sqlite":
                found["sqlite_master"] = [
                    (kind, name, table, _sqlite_ddl(sql))
                    for kind, name, table, sql in conn.exec_driver_sql(
                        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
                    )
                ]
            else:
                schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
                found["constraints"] = conn.exec_driver_sql(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                    "FROM pg_constraint WHERE connamespace = current_schema()::regnamespace "
                    "ORDER BY 1, 2"
                ).all()
                found["index definitions"] = [
                    (name, definition.replace(f"{schema}.", "SCHEMA."))
                    for name, definition in conn.exec_driver_sql(
                        "SELECT indexname, indexdef FROM pg_indexes "
                        "WHERE schemaname = current_schema() ORDER BY 1"
                    )
                ]
                found["sequences"] = conn.exec_driver_sql(
                    "SELECT sequence_name, data_type, start_value, increment "
                    "FROM information_schema.sequences "
                    "WHERE sequence_schema = current_schema() ORDER BY 1"
                ).all()
    finally:
        engine.dispose()
    return found


def test_a_new_database_gets_exactly_the_migrated_schema(db_url: str, other_db_url: str) -> None:
    """create_schema (the models' create_all, then stamp head), which a new SQLite file gets
    on first use, builds the very schema that running every migration builds."""
    created = Store(db_url)
    assert created.create_schema()
    assert created.current_revision() == created.head_revision()
    created.engine.dispose()
    migrated = Store(other_db_url)
    migrated.upgrade()
    migrated.engine.dispose()
    assert _schema(db_url) == _schema(other_db_url)


def test_create_schema_leaves_a_database_with_tables_alone(db_url: str) -> None:
    """A database that has tables is for upgrade: create_schema changes nothing there."""
    store = Store(db_url)
    store.upgrade("0001")
    assert not store.create_schema()
    assert store.current_revision() == "0001"
    store.engine.dispose()


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


def test_an_older_sqlite_file_is_migrated_on_first_use(tmp_path: Path) -> None:
    """A SQLite file at an older revision runs the migrations on first use, keeping its rows."""
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    store.upgrade("0001")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO teams (name, assignment, cap) VALUES ('t', 'manual', 0)")
    store.ensure_schema()
    assert store.current_revision() == store.head_revision()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT name FROM teams").scalars().all() == ["t"]
    store.engine.dispose()


def test_test_databases_are_the_migrated_schema(
    db_url: str, other_db_url: str, fresh_db_url: Callable[[], str]
) -> None:
    """The tests' own shortcut (a copy of a migrated SQLite file; in PostgreSQL the
    migration's SQL replayed, or a spare schema built so ahead and renamed, as every
    later test gets it) gives what running every migration gives."""
    migrated = Store(other_db_url)
    migrated.upgrade()
    migrated.engine.dispose()
    expected = _schema(other_db_url)
    for url in (db_url, fresh_db_url(), fresh_db_url()):
        migrate(url)
        assert _schema(url) == expected


def test_the_head_read_from_the_scripts_is_alembics() -> None:
    """The head that a start compares with, read without Alembic, is Alembic's own."""
    assert _head_from_files() == Store("sqlite://").head_revision()


def test_a_start_on_an_up_to_date_database_does_not_import_alembic(tmp_path: Path) -> None:
    """Alembic is for migrating: opening a database at the head leaves it unimported,
    which saves a tenth of every `mailgate` process's start."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate(url)
    probe = (
        "import sys\n"
        "from mailgate.db.store import Store\n"
        f"Store({url!r}).ensure_schema()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.stdout.strip() == "[]"


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
            conn.execute(sa.text("UPDATE tickets SET subject = 'Boiler' WHERE id = 2"))
            if conn.dialect.name == "sqlite":  # PostgreSQL indexes expressions: no triggers
                table = search_index.fts_table("tickets")
                found = conn.execute(
                    sa.text(f"SELECT rowid FROM {table} WHERE {table} MATCH 'boiler'")  # noqa: S608
                ).scalars()
                assert list(found) == [2]
    finally:
        store.engine.dispose()


def test_0018_suppliers_and_back(db_url: str) -> None:
    """0018 (issue 22): from 0017 with tickets in place, they get no suppliers (count 0)
    and the new tables take rows; the SQLite search triggers of 0016 still index a
    change after it (no table rebuild), and its downgrade drops the tables again."""
    from sqlalchemy.orm import Session

    from mailgate.db import search

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
            conn.execute(sa.text("UPDATE tickets SET subject = 'Boiler' WHERE id = 2"))
        with Session(store.engine) as session:
            assert [t.id for t in search.search(session, "boiler", internal=True)] == [2]
        store.downgrade("0017_helpers_departments")
        with store.engine.begin() as conn:
            tables = sa.inspect(conn).get_table_names()
            assert "suppliers" not in tables and "ticket_suppliers" not in tables
            conn.execute(sa.text("UPDATE tickets SET subject = 'Furnace' WHERE id = 1"))
            if conn.dialect.name == "sqlite":  # PostgreSQL indexes expressions: no triggers
                table = search_index.fts_table("tickets")
                found = conn.execute(
                    sa.text(f"SELECT rowid FROM {table} WHERE {table} MATCH 'furnace'")  # noqa: S608
                ).scalars()
                assert list(found) == [1]
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
