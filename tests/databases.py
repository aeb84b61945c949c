"""Test databases at the head revision without running every migration for each test.

The migrations run once per test session, on a template: a SQLite file that each test
gets a copy of, and a PostgreSQL schema whose migration SQL is recorded and replayed
into each test's schema. So every test still starts from exactly what the migrations
build (not from the models), at a fraction of the cost: migrating step by step took
most of a typical test's time.

PostgreSQL schemas live in a database of this test process's own, created on first use
and dropped at exit. Every schema made and dropped leaves dead rows in the system
catalogs, and a server with autovacuum off (as this project's CI machine runs it) never
clears them: in the shared ``test`` database they had grown to 466 MB of
``pg_attribute`` over many runs, and building one test schema there took 0.32 s of the
server's CPU against 0.08 s in a new database. Dropping the database drops its catalogs.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import shutil
import socket
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mailgate.db.store import Store
from tests.pg_spares import Spares, new_schema_name

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
# The database the machine provides; the suite only connects to it to create its own.
PG_MAINTENANCE = f"{PG_SERVER}/test"
# mailgate_test_<host>_<pid>: the host, so that a sweep never drops another machine's.
_OWN_PREFIX = "mailgate_test_" + hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_SQLITE = "sqlite:///"


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the head revision, as `mailgate db upgrade` does.

    A new SQLite file becomes a copy of the session's migrated template; an empty
    PostgreSQL schema (``pg_schema_url``) gets the template's migration replayed. Anything
    else, a database that already has tables, is upgraded in place.
    """
    if _sqlite_path(url) is not None and _copy_sqlite_template(url):
        return
    if _pg_schema_of(url) is not None and _replay_pg_template(url):
        return
    store = Store(url)
    try:
        store.upgrade()
    finally:
        store.engine.dispose()


def pg_schema_url(schema: str) -> str:
    """The URL of ``schema`` in the test database: every table name resolves there."""
    return f"{pg_dsn()}?options=-csearch_path%3D{schema}"


@functools.cache
def pg_dsn() -> str:
    """The URL of this process's own test database, made on first use, dropped at exit.

    Databases that an earlier process on this host left behind (it was killed before
    its exit handlers ran) are dropped first.
    """
    name = f"{_OWN_PREFIX}_{os.getpid()}"
    maintenance = sa.create_engine(PG_MAINTENANCE, isolation_level="AUTOCOMMIT")
    try:
        with maintenance.connect() as conn:
            for stale in conn.execute(_OWN_DATABASES, {"prefix": f"{_OWN_PREFIX}\\_%"}).scalars():
                if stale == name or not _process_alive(stale):
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        maintenance.dispose()
    # Registered before any engine on the database is, so it runs after they are disposed.
    atexit.register(_drop_database, name)
    return f"{PG_SERVER}/{name}"


_OWN_DATABASES = sa.text("SELECT datname FROM pg_database WHERE datname LIKE :prefix")


def _process_alive(database: str) -> bool:
    pid = int(database.rsplit("_", 1)[1])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        pass
    return True


def _drop_database(name: str) -> None:
    maintenance = sa.create_engine(PG_MAINTENANCE, isolation_level="AUTOCOMMIT")
    try:
        with maintenance.connect() as conn:
            # FORCE: a subprocess's pooled connection may outlive the test that made it.
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        maintenance.dispose()


def pg_schema() -> Generator[str, None, None]:
    """A throwaway, empty schema in PostgreSQL, yields its URL; afterwards it is reset for
    another test (when it still has exactly the migrated tables) or dropped."""
    with _pg_admin().begin() as conn:
        schema = _create_schema(conn)
    try:
        yield pg_schema_url(schema)
    finally:
        if not _SPARES.give_back(schema):
            _drop_schema(schema)


def _create_schema(conn: sa.Connection) -> str:
    """A new, empty schema, made in ``conn``'s transaction; returns its name."""
    schema = new_schema_name()
    conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    return schema


def _drop_schema(schema: str) -> None:
    with _pg_admin().begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@functools.cache
def _pg_admin() -> sa.Engine:
    # One pooled engine for the whole session: a new connection per schema made and
    # dropped cost more than the statements themselves.
    engine = sa.create_engine(pg_dsn())
    atexit.register(engine.dispose)
    return engine


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith(_SQLITE) or url.startswith(f"{_SQLITE}:memory:"):
        return None
    return Path(url.removeprefix(_SQLITE)).expanduser()


def _copy_sqlite_template(url: str) -> bool:
    """Copy the template to a new file at ``url``; False if a database is already there."""
    path = _sqlite_path(url)
    assert path is not None
    # A file, even an empty one, or a WAL beside it may hold what a test put there.
    if any(Path(f"{path}{suffix}").exists() for suffix in ("", "-wal", "-journal")):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_sqlite_template(), path)
    return True


@functools.cache
def _sqlite_template() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="mailgate-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "template.db"
    store = Store(f"{_SQLITE}{path}")
    try:
        store.upgrade()
        with store.engine.connect() as conn:
            # Everything into the main file, so that copying that one file is enough.
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.engine.dispose()
    return path


def _pg_schema_of(url: str) -> str | None:
    options = sa.make_url(url).query.get("options")
    if not isinstance(options, str) or not options.startswith("-csearch_path="):
        return None
    return options.removeprefix("-csearch_path=")


def _replay_pg_template(url: str) -> bool:
    """Give the empty schema of ``url`` the migrated tables; False if it is not empty.

    The tables come from a spare schema: one that an earlier test used, reset, or one
    built while the previous test ran (PostgreSQL builds it on the other core). The
    empty schema is dropped and the spare renamed in its place. A rename changes no
    table, sequence or default, as they refer to each other by OID.
    """
    schema = _pg_schema_of(url)
    with _pg_admin().begin() as conn:
        if conn.execute(_HAS_OBJECTS, {"schema": schema}).scalar_one():
            return False
        spare = _SPARES.take()
        if spare is None:  # none ready: the first one of the session, or after a drop
            _replay(conn, schema)
        else:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}"')
            conn.exec_driver_sql(f'ALTER SCHEMA "{spare}" RENAME TO "{schema}"')
    _SPARES.keep_one_ahead()
    return True


# Anything at all in the schema (a table, sequence, type or function) keeps it as it is.
_HAS_OBJECTS = sa.text(
    "SELECT EXISTS (SELECT FROM pg_class WHERE relnamespace = to_regnamespace(:schema))"
    " OR EXISTS (SELECT FROM pg_proc WHERE pronamespace = to_regnamespace(:schema))"
    " OR EXISTS (SELECT FROM pg_type WHERE typnamespace = to_regnamespace(:schema))"
)


def _build() -> str:
    """A new schema with the migrated tables, in one transaction; returns its name."""
    with _pg_admin().begin() as conn:
        spare = _create_schema(conn)
        _replay(conn, spare)
    return spare


_SPARES = Spares(admin=_pg_admin, build=_build)


def _replay(conn: sa.Connection, schema: str | None) -> None:
    """Run the template's migration SQL in ``schema``, within ``conn``'s transaction."""
    statements = _pg_template()
    conn.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')
    # Straight to the driver, exactly as the migration sent them: with no parameters
    # at all the driver does not read ``%`` as a placeholder, with some it does.
    cursor = conn.connection.cursor()
    try:
        for statement, parameters, many in statements:
            if parameters is _NO_PARAMETERS:
                cursor.execute(statement)
            elif many:
                cursor.executemany(statement, parameters)
            else:
                cursor.execute(statement, parameters)
    finally:
        cursor.close()


_NO_PARAMETERS = object()


@functools.cache
def _pg_template() -> tuple[tuple[str, Any, bool], ...]:
    """Every statement that migrating an empty schema to head sent, in order, with its
    parameters (``_NO_PARAMETERS`` when it was sent without) and whether it was many."""
    recorded: list[tuple[str, Any, bool]] = []
    with _pg_admin().begin() as conn:
        schema = _create_schema(conn)
    store = Store(pg_schema_url(schema))

    @sa.event.listens_for(store.engine, "before_cursor_execute")
    def record(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        bare = context is not None and context.no_parameters and not many
        recorded.append((statement, _NO_PARAMETERS if bare else parameters, many))

    try:
        store.upgrade()
    finally:
        store.engine.dispose()
        _drop_schema(schema)  # only its SQL is kept
    return tuple(recorded)
