"""What every command shares: the config, loaded once, and the store, opened on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from mailgate import config, logs
from mailgate.settings import Settings
from mailgate.store import Store, open_store


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
