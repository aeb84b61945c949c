"""Migrations: the same Alembic scripts build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mailgate.db.models import Base
from mailgate.db.store import Store


def test_upgrade_builds_exactly_the_models(db_url: str) -> None:
    """After `db upgrade` the database matches the models: no table or column left out of a migration."""
    store = Store(db_url)
    before, after = store.upgrade()
    assert before is None and after == store.head_revision()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    store.engine.dispose()
    assert diff == []


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
