"""What a bulk import's parsing processes run. Kept apart, importing only the pure
core, so that a worker process starts without loading the database layer."""

from __future__ import annotations

from mailgate.core.message import ParseRefused
from mailgate.core.prepared import Prepared, prepare
from mailgate.core.settings import Settings

_settings: Settings | None = None


def start(settings: Settings) -> None:
    """The pool's initializer: the settings every message is parsed with."""
    global _settings  # noqa: PLW0603 - one per worker process, set once at its start
    _settings = settings


def prepare_all(raws: list[bytes]) -> list[Prepared | ParseRefused]:
    assert _settings is not None, "start() runs first, as the pool's initializer"
    return [prepare(raw, _settings) for raw in raws]
