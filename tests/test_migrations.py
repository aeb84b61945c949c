"""Migrations: the same Alembic scripts build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mailgate.db import search_index
from mailgate.db.migration_scripts import head_from_files
from mailgate.db.models import Base
from mailgate.db.store import Store
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
    (SQLite), GIN indexes and a stored vector (PostgreSQL). test_a_new_database_gets_
    exactly_the_migrated_schema checks a new database gets it as the migrations build it."""
    if kind == "table":
        return name not in search_index.SEARCH_TABLES
    if kind == "column":
        return name not in search_index.SEARCH_COLUMNS
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

                def definitions(query: str) -> list[tuple[str, str]]:
                    """(name, definition) rows, with the schema's name taken out."""
                    rows = conn.exec_driver_sql(query)
                    return [(name, text.replace(f"{schema}.", "SCHEMA.")) for name, text in rows]

                found["index definitions"] = definitions(
                    "SELECT indexname, indexdef FROM pg_indexes "
                    "WHERE schemaname = current_schema() ORDER BY 1"
                )
                # The triggers and their functions (customer_keys'), written to the letter.
                found["triggers"] = definitions(
                    "SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE c.relnamespace = current_schema()::regnamespace "
                    "AND NOT t.tgisinternal ORDER BY 1"
                )
                found["functions"] = definitions(
                    "SELECT proname, pg_get_functiondef(oid) FROM pg_proc "
                    "WHERE pronamespace = current_schema()::regnamespace ORDER BY 1"
                )
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
    assert head_from_files() == Store("sqlite://").head_revision()


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


@pytest.mark.postgres
def test_a_schema_a_test_is_done_with_comes_back_as_new(pg_url: str) -> None:
    """tests/pg_spares.py: a PostgreSQL schema is reset for the next test, rows and
    sequences as the migrations left them; one whose structure a test changed is not
    reused."""
    del pg_url  # only the server, through the fixture's skip or failure
    expected: dict[str, Any] | None = None
    for round_ in range(3):
        made = pg_schema()
        url = next(made)
        migrate(url)
        expected = expected or _schema(url)
        assert _schema(url) == expected
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM tickets").scalar() == 0
            assert conn.exec_driver_sql("SELECT nextval('tickets_id_seq')").scalar() == 1
            assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
            conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('left over')")
            if round_ == 1:
                conn.exec_driver_sql("ALTER TABLE teams ADD COLUMN left_over integer")
        engine.dispose()
        next(made, None)  # reset and kept, or (round 1) dropped
