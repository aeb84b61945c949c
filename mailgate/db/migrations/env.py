"""Alembic environment: mailgate passes its own connection; the URL is a fallback."""

from alembic import context

from mailgate.db.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    # mailgate always hands over its own connection (see store.Store.upgrade).
    _migrate(config.attributes["connection"])


def _migrate(connection) -> None:  # type: ignore[no-untyped-def]
    # SQLite cannot ALTER most things in place; batch mode copies the table.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run()
