"""Test schemas in PostgreSQL that outlive their test: reset and handed to the next.

Building a schema from the migration SQL costs the server about 80 ms of CPU and
dropping it 20 ms; resetting one a test is done with costs about 10 ms, and a test on
PostgreSQL makes one or two.
"""

# ruff: noqa: S608 - every name in a statement here is from PostgreSQL's catalog or uuid4.
from __future__ import annotations

import atexit
import functools
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import sqlalchemy as sa

# What a schema is made of, without its name: relations (tables, indexes, sequences,
# views) with their columns and defaults, constraints, functions, types and triggers.
# Two schemas with the same fingerprint have the same structure for every test here.
# The schema's own name is taken out: a default names its sequence with it.
_FINGERPRINT = sa.text(
    """SELECT md5(replace(string_agg(x, ',' ORDER BY x), :schema, '')) FROM (
    SELECT concat_ws(' ', c.relname, c.relkind::text, a.attnum, a.attname, a.atttypid,
        a.atttypmod, a.attnotnull, pg_get_expr(d.adbin, d.adrelid)) AS x
    FROM pg_class c
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
    WHERE c.relnamespace = to_regnamespace(:schema)
    UNION ALL SELECT concat_ws(' ', conname, contype::text, conkey::text, confkey::text)
    FROM pg_constraint WHERE connamespace = to_regnamespace(:schema)
    UNION ALL SELECT proname::text FROM pg_proc WHERE pronamespace = to_regnamespace(:schema)
    UNION ALL SELECT typname::text FROM pg_type WHERE typnamespace = to_regnamespace(:schema)
    UNION ALL SELECT tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = to_regnamespace(:schema) AND NOT t.tgisinternal) parts"""
)
_TABLES = sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :schema")
_SEQUENCES = sa.text(
    "SELECT relname FROM pg_class WHERE relkind = 'S' AND relnamespace = to_regnamespace(:schema)"
)


def new_schema_name() -> str:
    """A name no other schema in the test database has."""
    return f"t_{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class _Pristine:
    """A migrated schema no test ever gets: what a reset schema must equal."""

    schema: str
    fingerprint: str
    tables: tuple[str, ...]
    tables_with_rows: tuple[str, ...]  # alembic_version, and whatever migrations insert
    sequences: tuple[str, ...]


class Spares:
    """Migrated schemas for the next tests to take.

    A schema a test is done with is reset and kept when it still has exactly the
    migrated structure: its rows deleted, the pristine schema's rows copied in, its
    sequences set to where the pristine one's are. That costs PostgreSQL about 10 ms,
    where building one from the migration SQL costs about 80 ms and dropping it 20 ms.
    A schema that a test changed (a downgrade, a dropped table) is dropped, and a new
    one is built in a background thread.
    """

    def __init__(self, *, admin: Callable[[], sa.Engine], build: Callable[[], str]) -> None:
        self._admin = admin  # the pooled engine on the test database
        self._build = build  # a new schema, migrated to head; returns its name
        self._ready: list[str] = []
        self._builder: ThreadPoolExecutor | None = None
        self._building: Future[str] | None = None

    def take(self) -> str | None:
        """A ready spare's name (raising what building it raised); None if none."""
        if self._ready:
            return self._ready.pop()
        building, self._building = self._building, None
        return None if building is None else building.result()

    def keep_one_ahead(self) -> None:
        """Start building a spare if none is ready or being built."""
        if self._ready or self._building is not None:
            return
        if self._builder is None:
            self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-spare")
            atexit.register(self._builder.shutdown, wait=True)
        self._building = self._builder.submit(self._build)

    def give_back(self, schema: str) -> bool:
        """Reset ``schema`` and keep it as a spare; False if it cannot be (drop it)."""
        pristine = self._pristine_schema
        spare = new_schema_name()
        try:
            with self._admin().begin() as conn:
                # A lock held by a process that outlived its test: drop instead of wait.
                conn.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
                found = conn.execute(_FINGERPRINT, {"schema": schema}).scalar_one()
                if found != pristine.fingerprint:
                    return False
                # Renamed first: a connection left over from the test (a subprocess's
                # pool) names its schema in search_path and can no longer reach it.
                conn.exec_driver_sql(f'ALTER SCHEMA "{schema}" RENAME TO "{spare}"')
                _reset(conn, spare, pristine)
        except sa.exc.OperationalError:
            return False
        self._ready.append(spare)
        return True

    @functools.cached_property
    def _pristine_schema(self) -> _Pristine:
        schema = self._build()
        with self._admin().begin() as conn:
            tables = tuple(conn.execute(_TABLES, {"schema": schema}).scalars())
            with_rows = tuple(
                table
                for table in tables
                if conn.exec_driver_sql(
                    f'SELECT EXISTS (SELECT FROM "{schema}"."{table}")'
                ).scalar()
            )
            return _Pristine(
                schema=schema,
                fingerprint=conn.execute(_FINGERPRINT, {"schema": schema}).scalar_one(),
                tables=tables,
                tables_with_rows=with_rows,
                sequences=tuple(conn.execute(_SEQUENCES, {"schema": schema}).scalars()),
            )


def _reset(conn: sa.Connection, schema: str, pristine: _Pristine) -> None:
    """Make ``schema``'s rows and sequences those of the pristine schema."""
    # Replica role: no foreign key or other trigger fires, so no order is needed.
    conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    for table in pristine.tables:
        conn.exec_driver_sql(f'DELETE FROM "{schema}"."{table}"')
    for table in pristine.tables_with_rows:
        conn.exec_driver_sql(
            f'INSERT INTO "{schema}"."{table}" SELECT * FROM "{pristine.schema}"."{table}"'
        )
    for sequence in pristine.sequences:
        conn.exec_driver_sql(
            f'SELECT setval(\'"{schema}"."{sequence}"\', last_value, is_called)'
            f' FROM "{pristine.schema}"."{sequence}"'
        )
