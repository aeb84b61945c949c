"""Logging: JSON lines with fields, text lines with key=value, files reopened on SIGHUP."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path

import pytest

from mailgate.core.settings import LoggingSettings
from mailgate.ops import logs


@pytest.fixture(autouse=True)
def _restore_logging():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    previous = signal.getsignal(signal.SIGHUP)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    signal.signal(signal.SIGHUP, previous)


def test_json_lines_carry_extra_fields(tmp_path: Path) -> None:
    """format = "json" writes one object per line with the message's ids and outcome."""
    path = tmp_path / "m.log"
    logs.setup(LoggingSettings(format="json", file=str(path)))
    logging.getLogger("mailgate.tickets.mail").info(
        "inbound processed", extra={"inbound_id": 7, "outcome": "reply"}
    )
    entry = json.loads(path.read_text().strip())
    assert entry["message"] == "inbound processed"
    assert (entry["inbound_id"], entry["outcome"], entry["level"]) == (7, "reply", "info")


def test_text_lines_append_key_values(tmp_path: Path) -> None:
    """format = "text" keeps one line, fields as key=value."""
    path = tmp_path / "m.log"
    logs.setup(LoggingSettings(file=str(path)))
    logging.getLogger("mailgate").warning("stored", extra={"inbound_id": 3})
    line = path.read_text().strip()
    assert line.endswith("WARNING mailgate: stored inbound_id=3")


def test_sighup_reopens_a_rotated_file(tmp_path: Path) -> None:
    """After logrotate moves the file, SIGHUP makes new lines go to a new file at the same path."""
    path = tmp_path / "m.log"
    logs.setup(LoggingSettings(file=str(path)))
    logs.reopen_on_sighup()
    logging.getLogger("mailgate").warning("before")
    path.rename(tmp_path / "m.log.1")
    os.kill(os.getpid(), signal.SIGHUP)
    logging.getLogger("mailgate").warning("after")
    assert "after" in path.read_text() and "after" not in (tmp_path / "m.log.1").read_text()


def test_level_and_parser_noise(tmp_path: Path) -> None:
    """The level applies; mail-parser's per-part warnings and pika's per-attempt
    connection errors are silenced."""
    path = tmp_path / "m.log"
    logs.setup(LoggingSettings(level="ERROR", file=str(path)))
    logging.getLogger("mailgate").warning("hidden")
    logging.getLogger("mailparser").error("noise")
    logging.getLogger("pika.adapters.blocking_connection").error("Error in _create_connection()")
    logging.getLogger("mailgate").error("shown")
    assert path.read_text().count("\n") == 1 and "shown" in path.read_text()
