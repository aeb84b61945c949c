"""What every command shares: the config, loaded once, and the store, opened on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from mailgate.core import config
from mailgate.core.errors import MailgateError
from mailgate.core.settings import Settings
from mailgate.ops import logs

if TYPE_CHECKING:
    from mailgate.db.store import Store

# Commands that only read, or change only rows that must already be there: on a SQLite
# file that does not exist they say so instead of creating an empty database (a wrong
# --config or folder would otherwise show "No tickets"). Every other command that opens
# the database creates it, migrated, as the one-box install expects.
NO_NEW_DATABASE = frozenset(
    {
        "agents list",
        "api-tokens list",
        "api-tokens revoke",
        "customers list",
        "db current",
        "inbound accept",
        "inbound list",
        "inbound retry",
        "inbound show",
        "notices list",
        "notices retry",
        "responses list",
        "responses remove",
        "responses show",
        "stats",
        "teams list",
        "tickets assign",
        "tickets close",
        "tickets due",
        "tickets link",
        "tickets list",
        "tickets note",
        "tickets reply",
        "tickets show",
        "tickets status",
        "todos done",
        "todos list",
    }
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _command() -> str:
    """The running subcommand, e.g. ``tickets list``, without the program's name."""
    current = click.get_current_context(silent=True)
    return " ".join(current.command_path.split()[1:]) if current is not None else ""


@dataclass
class Context:
    config_path: str | None
    verbose: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)
    # The store's SQLite writes let every other writer's go first: the worker's.
    background_writes: bool = False

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = config.load(config.resolve_path(self.config_path))
        return self._settings

    def service_logging(self) -> None:
        """Log as ``[logging]`` says, with SIGHUP reopening a log file: for long-running roles."""
        logs.setup(self.settings.logging, verbose=self.verbose)
        logs.reopen_on_sighup()

    @property
    def store(self) -> Store:
        if self._store is None:
            # Imported here: SQLAlchemy is a tenth of a second that `--help` and
            # `check-config` do not need.
            from mailgate.db.store import open_store

            if _command() in NO_NEW_DATABASE:
                self.require_database()
            self._store = open_store(self.settings, background=self.background_writes)
            if self.settings.queue.broker != "embedded":
                # Notices a command writes (a reply, a status) go to the broker at once.
                from mailgate.jobs import queue_notices_after_commit

                queue_notices_after_commit(self._store, self.settings)
        return self._store

    def require_database(self) -> None:
        """Refuse (exit 1, one line) when the database is a SQLite file that does not exist."""
        path = config.sqlite_file(self.settings.database.url)
        if path is not None and not path.exists():
            raise MailgateError(
                f"no database at {path} (database.url of {self.settings.source}); "
                f"`mailgate {_command()}` does not create one"
            )

    def close(self) -> None:
        """Hand the database connections back (at the end of every command)."""
        if self._store is not None:
            self._store.engine.dispose()
            self._store = None
