"""The database edge: engine, migrations, transactions, and config entities synced in."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import create_engine, event, inspect, select, text, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from mailgate.core.errors import ConfigError, DatabaseBusy, StorageFull, TemporaryFailure
from mailgate.core.settings import Settings
from mailgate.db import customer_keys, migration_scripts, search_index, write_turns
from mailgate.db.models import Agent, Base, Customer, Supplier, Team

# Alembic (with Mako and Pygments) is imported only to migrate, stamp or report: a start
# on an up-to-date database does not need it, and importing it took a tenth of every
# `mailgate` process's start.
if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)
_Row = TypeVar("_Row")


# Below this much free space beside a SQLite file, its I/O errors are put down to a full
# disk: growing the WAL index (-shm) on a full disk fails as SQLITE_IOERR_SHMSIZE, not
# SQLITE_FULL.
_NEARLY_FULL_BYTES = 1 << 20
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


def lock_row(
    session: Session,
    model: type[_Row],
    row_id: int,
    *,
    touch: InstrumentedAttribute[Any],
) -> _Row:
    """Row ``row_id`` of ``model``, locked until commit and read after the lock is held.

    One statement, ``UPDATE … SET touch = touch … RETURNING *``: on PostgreSQL the update
    takes the row's lock (FOR NO KEY UPDATE, so it does not conflict with the KEY SHARE
    lock a foreign key takes), a second writer waits, then reads the first one's writes;
    on SQLite it takes the database's write lock (pysqlite begins a transaction only at a
    write, so a plain read first could be stale by the time this transaction writes).
    """
    return session.execute(
        update(model)
        .where(model.id == row_id)  # type: ignore[attr-defined]
        .values({touch: touch})
        .returning(model)
        .execution_options(populate_existing=True)
    ).scalar_one()


def _quietly(hook: Callable[[dict[str, Any]], None], info: dict[str, Any]) -> None:
    """Run an after-commit hook; its failure must not undo or fail what committed."""
    try:
        hook(info)
    except Exception:
        log.warning("an after-commit hook failed", exc_info=True)


def _free_bytes(folder: Path) -> int | None:
    """Space an unprivileged writer may still use in ``folder``; None if unknown."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run beside the one writer; busy_timeout makes writers queue
        # instead of failing at once; foreign keys are off by default in SQLite.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


class Store:
    """One database: an engine, a session factory, and the migration state."""

    def __init__(
        self, url: str, *, sqlite_busy_timeout_ms: int = 30_000, background: bool = False
    ) -> None:
        """``background``: this process's SQLite writes let every other writer's go first
        (``write_turns``), as the worker's do, so that acknowledging mail never waits
        for processing it."""
        self.url = url
        self.sqlite_busy_timeout_ms = sqlite_busy_timeout_ms
        options: dict[str, Any] = {}
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(
                parents=True, exist_ok=True
            )
            # Writers of the file take turns (db.write_turns), so a waiting one goes as
            # soon as a transaction ends instead of when SQLite's busy handler wakes it.
            factory = write_turns.connection_class(
                sqlite_busy_timeout_ms / 1000, background=background
            )
            options["connect_args"] = {"factory": factory}
        try:
            self.engine = create_engine(url, pool_pre_ping=True, **options)
        except (ImportError, ModuleNotFoundError) as exc:
            raise ConfigError(
                [
                    f"database.url: no driver for {url.split(':', maxsplit=1)[0]!r} installed "
                    f"(pip install 'mailgate[postgres]'): {exc}"
                ]
            ) from None
        except Exception as exc:  # noqa: BLE001 - a bad URL is a config mistake, not a crash
            raise ConfigError([f"database.url: cannot use {url!r}: {exc}"]) from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas(sqlite_busy_timeout_ms))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Called with each committed session's ``info`` (e.g. the notices it wrote), so an
        # edge can hand them to a queue once they exist for everyone: after the commit.
        self.after_commit: list[Callable[[dict[str, Any]], None]] = []

    def precedence(self) -> write_turns.Precedence | None:
        """A claim to write before background writers (``write_turns.Precedence``);
        None where writers do not take turns (PostgreSQL, a memory database)."""
        database = self.engine.url.database
        if not self.is_sqlite or not database or database == ":memory:":
            return None
        # The name pysqlite opens, so the same file as the connections' turns.
        return write_turns.Precedence(os.path.abspath(database))

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def _unavailable(self, exc: OperationalError) -> TemporaryFailure:
        """The retryable error for a failed statement: ``StorageFull`` when the
        database had no room to write, so receivers can say so (452 4.3.1)."""
        orig = exc.orig
        if getattr(orig, "sqlstate", None) == _PG_DISK_FULL:
            return StorageFull(f"database disk is full: {orig}")
        name = str(getattr(orig, "sqlite_errorname", ""))
        if name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR"):
            folder = Path(self.url.removeprefix("sqlite:///")).expanduser().parent
            free = _free_bytes(folder)
            if name == "SQLITE_FULL" or (free is not None and free < _NEARLY_FULL_BYTES):
                return StorageFull(f"no space left for the database in {folder}: {orig}")
        if name.startswith("SQLITE_BUSY"):
            return DatabaseBusy(f"database unavailable: {orig}")
        return TemporaryFailure(f"database unavailable: {orig}")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any exception.

        Connection and lock errors become ``TemporaryFailure``: the caller may retry.
        """
        session = self._sessions()
        try:
            yield session
            session.commit()
            for hook in self.after_commit:
                _quietly(hook, session.info)
        except OperationalError as exc:
            session.rollback()
            raise self._unavailable(exc) from exc
        except DBAPIError as exc:
            session.rollback()
            if exc.connection_invalidated:
                raise TemporaryFailure(f"database connection lost: {exc.orig}") from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def _at_head(self) -> bool:
        """True if the database is stamped with the head revision, found without
        Alembic; False if not, or not known that way (then Alembic is asked)."""
        head = migration_scripts.head_from_files()
        if head is None:
            return False
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return False
            stamped = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        return [row[0] for row in stamped] == [head]

    def head_revision(self) -> str | None:
        return migration_scripts.scripts().get_current_head()

    def upgrade(self, revision: str = "head") -> tuple[str | None, str | None]:
        """Apply every pending migration; returns (before, after) revisions."""
        from alembic import command

        return self._migrate(command.upgrade, revision)

    def downgrade(self, revision: str) -> tuple[str | None, str | None]:
        """Undo migrations down to ``revision``; returns (before, after) revisions."""
        from alembic import command

        return self._migrate(command.downgrade, revision)

    def _migrate(
        self, step: Callable[[AlembicConfig, str], None], revision: str
    ) -> tuple[str | None, str | None]:
        try:
            before = self.current_revision()
            with self.engine.connect() as conn:
                if self.is_sqlite:
                    # SQLite changes a column by copying the table (Alembic batch mode);
                    # dropping the old copy trips foreign keys pointing at it. The pragma
                    # only takes effect outside a transaction, so it comes first, and the
                    # keys are checked once everything is in place.
                    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                    conn.commit()
                with conn.begin():
                    cfg = migration_scripts.alembic_config()
                    cfg.attributes["connection"] = conn
                    step(cfg, revision)
                if self.is_sqlite:
                    problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()
                    if problems:
                        raise RuntimeError(f"foreign keys broken by a migration: {problems[:5]}")
            after = self.current_revision()
            if after != before:
                log.info("database migrated from %s to %s", before or "empty", after)
            return before, after
        except OperationalError as exc:
            raise self._unavailable(exc) from exc

    def create_schema(self) -> bool:
        """Build the head schema on an empty database in one step: the models' tables,
        then the head revision stamped, as ``create_all`` and ``alembic stamp head`` do.

        Returns False, changing nothing, if the database already has tables: those are
        for ``upgrade``. tests/test_migrations.py proves this builds exactly the schema
        that running every migration builds, on SQLite and PostgreSQL.
        """
        try:
            with self.engine.connect() as conn:
                if self.is_sqlite:
                    # pysqlite opens no transaction before DDL, so each CREATE would
                    # commit alone and a crash half-way would leave a partial schema that
                    # no later start repairs. IMMEDIATE also takes the write lock first:
                    # of two processes starting on one new file, the second waits here,
                    # then finds the tables and leaves them.
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    conn.begin()
                try:
                    created = self._create_schema(conn)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
                return created
        except OperationalError as exc:
            raise self._unavailable(exc) from exc

    @staticmethod
    def _create_schema(conn: Connection) -> bool:
        from alembic.runtime.migration import MigrationContext

        if inspect(conn).get_table_names():
            return False
        Base.metadata.create_all(conn)
        search_index.create(conn)  # not tables of the models: FTS5 tables, GIN indexes
        customer_keys.create(conn)  # the triggers that fill customer_keys
        MigrationContext.configure(conn).stamp(migration_scripts.scripts(), "head")
        return True

    def ensure_schema(self) -> None:
        """Make the schema usable: a new SQLite file gets the head schema and an older one
        is migrated in place (the one-box default); any other database must have been
        migrated with ``mailgate db upgrade``."""
        try:
            if self._at_head():
                return
            current, head = self.current_revision(), self.head_revision()
        except OperationalError as exc:
            raise self._unavailable(exc) from exc
        if current == head:
            return
        if self.is_sqlite:
            # A new file gets the head schema at once: running every migration step by
            # step (each SQLite one copies tables) made each first start slower. A file
            # at an older revision, or one that has tables but no revision, migrates.
            if current is not None or not self.create_schema():
                self.upgrade()
            return
        raise ConfigError(
            [
                f"database.url: schema is at revision {current or 'none'}, this mailgate needs "
                f"{head}: run `mailgate db upgrade`"
            ]
        )

    def sync_directory(self, settings: Settings) -> None:
        """Create or update the teams, agents, customers and suppliers declared in the config file.

        Rows the CLI added are left alone; declared fields win over stored ones, except
        an agent's ``away`` and ``active``: the file gives their first value, and after
        that they are day-to-day state owned by ``mailgate agents set``.
        """
        with self.transaction() as session:
            for team in settings.teams:
                row = session.scalar(select(Team).where(Team.name == team.name))
                if row is None:
                    row = Team(name=team.name)
                    session.add(row)
                row.assignment, row.cap = team.assignment, team.cap
            agents: dict[str, Agent] = {}
            for agent in settings.agents:
                email = agent.email.lower()
                found = session.scalar(select(Agent).where(Agent.email == email))
                if found is None:
                    found = Agent(email=email, away=agent.away, active=agent.active)
                    session.add(found)
                found.name, found.teams = agent.name, list(agent.teams)
                agents[email] = found
            session.flush()
            for customer in settings.customers:
                crow = session.scalar(select(Customer).where(Customer.name == customer.name))
                if crow is None:
                    crow = Customer(name=customer.name)
                    session.add(crow)
                crow.domains = [d.lower() for d in customer.domains]
                crow.addresses = [a.lower() for a in customer.addresses]
                crow.admins = [a.lower() for a in customer.admins]
                crow.language = customer.language
                owner = agents.get(customer.owner.lower()) if customer.owner else None
                crow.owner_id = owner.id if owner else None
            for supplier in settings.suppliers:
                srow = session.scalar(select(Supplier).where(Supplier.name == supplier.name))
                if srow is None:
                    srow = Supplier(name=supplier.name)
                    session.add(srow)
                srow.addresses = [a.strip().lower() for a in supplier.addresses]
                srow.language = supplier.language


def open_store(settings: Settings, *, background: bool = False) -> Store:
    """The store for ``settings``, schema ready and the config's directory synced;
    ``background`` as ``Store`` has it."""
    store = Store(
        settings.database.url,
        sqlite_busy_timeout_ms=settings.database.sqlite_busy_timeout_ms,
        background=background,
    )
    store.ensure_schema()
    store.sync_directory(settings)
    return store
