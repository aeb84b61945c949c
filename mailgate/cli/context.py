"""What every command shares: the config, loaded once, and the store, opened on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from mailgate.core import config
from mailgate.core.settings import Settings
from mailgate.db.store import Store, open_store
from mailgate.ops import logs


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    config_path: str | None
    verbose: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)

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
            self._store = open_store(self.settings)
        return self._store

    def close(self) -> None:
        """Hand the database connections back (at the end of every command)."""
        if self._store is not None:
            self._store.engine.dispose()
            self._store = None
