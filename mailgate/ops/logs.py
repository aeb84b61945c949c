"""Logging setup: one line per event, as text or JSON, to stderr or a file that
SIGHUP reopens (for logrotate). Message bodies and secrets are never logged."""

from __future__ import annotations

import json
import logging
import logging.handlers
import signal
import sys
from datetime import UTC, datetime
from typing import Any

from mailgate.core.settings import LoggingSettings

# Attributes every LogRecord has; anything else was passed with `extra=` and is a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")
        ]
        return f"{line} {' '.join(extras)}" if extras else line


def setup(settings: LoggingSettings, *, verbose: bool = False) -> None:
    """Configure the root logger from ``[logging]``; ``verbose`` forces DEBUG."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    handler: logging.Handler
    if settings.file:
        # WatchedFileHandler reopens the file when logrotate moves it; SIGHUP forces it.
        handler = logging.handlers.WatchedFileHandler(settings.file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else settings.level.upper())
    # Library noise. mail-parser logs every odd MIME part at WARNING; mailgate records
    # them as defects. pika logs each failed connection attempt at ERROR, eight lines and
    # a traceback, many a second while RabbitMQ restarts; dramatiq's consumer and the
    # reconciler already say in one line that the broker is away.
    for name in ("mailparser", "pika"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    # Alembic says at INFO what it is about to do each time a store opens, and each
    # migration step; mailgate says in one line what was applied (db/store.py).
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


def reopen_on_sighup() -> None:
    """Install a SIGHUP handler that reopens file handlers (call from a long-running role)."""

    def reopen(_signum: int, _frame: object) -> None:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler):
                handler.acquire()
                try:
                    handler.close()
                    handler.stream = handler._open()
                finally:
                    handler.release()

    signal.signal(signal.SIGHUP, reopen)
