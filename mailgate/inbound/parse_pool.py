"""What a bulk import's worker processes run: parsing, and sending the notices of a
group once it has committed. Kept apart, importing only the pure core at first, so that
a worker process starts without loading the database layer; the first group's notices
load it (``send_notices``)."""

from __future__ import annotations

import logging
import logging.handlers
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from multiprocessing.queues import Queue
from typing import TYPE_CHECKING, Any

from mailgate.core.message import ParseRefused
from mailgate.core.prepared import Prepared, prepare
from mailgate.core.settings import Settings

if TYPE_CHECKING:
    from mailgate.db.store import Store

# How much nicer the workers run than the importing process: its transactions (the
# database's one writer, on SQLite) bound the import's speed, and the workers' share of
# the CPU is work it can wait for. About 3% faster on 2 cores (benchmarks/peers.py), as
# `mailgate run`'s worker yields to the receiver for the same reason.
NICER = 10

_settings: Settings | None = None
_store: Store | None = None


def start(settings: Settings, records: Queue[Any], levels: Mapping[str, int]) -> None:
    """The pool's initializer: the settings every message is parsed with, a lower
    priority than the importing process's (``NICER``), and logging as in it: each
    record goes to its handlers (``records``, which it listens to), from the loggers at
    the same ``levels``."""
    global _settings  # noqa: PLW0603 - one per worker process, set once at its start
    _settings = settings
    os.nice(NICER)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(logging.handlers.QueueHandler(records))
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)


def prepare_all(raws: list[bytes]) -> list[Prepared | ParseRefused]:
    assert _settings is not None, "start() runs first, as the pool's initializer"
    return [prepare(raw, _settings) for raw in raws]


def send_notices(notice_ids: list[int], now: Callable[[], datetime]) -> None:
    """Send a committed group's notices (the embedded queue's ``send_now``), with this
    process's own connection to the database."""
    global _store  # noqa: PLW0603 - one per worker process, opened at its first group
    from mailgate.db.store import Store
    from mailgate.outbound.sender import send_now

    assert _settings is not None, "start() runs first, as the pool's initializer"
    if _store is None:
        database = _settings.database
        _store = Store(database.url, sqlite_busy_timeout_ms=database.sqlite_busy_timeout_ms)
    send_now(_store, notice_ids, settings=_settings, now=now)
