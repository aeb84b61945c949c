"""Helpers for worker, rules and assignment tests: mail, config files, real
`mailgate` processes, failure injection, and polling instead of sleeping."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from mailgate.core.settings import Settings
from mailgate.db.store import Store, open_store
from tests.conftest import SECRET
from tests.databases import migrate

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def mail(
    *,
    sender: str = "jane@acme.test",
    subject: str = "Help please",
    body: str = "Hello, it does not work.",
    to: str = "support@example.com",
    message_id: str | None = None,
    headers: Sequence[str] = (),
) -> bytes:
    """A small RFC 5322 message; a fresh Message-ID unless one is given."""
    mid = message_id or f"{uuid.uuid4().hex}@acme.test"
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Message-ID: <{mid}>"]
    lines += list(headers)
    return ("\r\n".join([*lines, "", body, ""])).encode()


def wait_for(check: Callable[[], T], *, timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def unique_queue_name() -> str:
    """A queue name no other test uses, so leftovers on a broker never matter."""
    return f"t{uuid.uuid4().hex[:12]}"


def write_config(
    path: Path,
    db_url: str,
    *,
    broker: str = "embedded",
    queue_name: str = "mailgate",
    queue: str = "",
    text: str = "",
) -> Path:
    """A config file for real `mailgate` processes; ``queue`` adds [queue] keys and
    ``text`` whole sections."""
    path.write_text(
        f'[database]\nurl = "{db_url}"\n[security]\nsecret = "{SECRET}"\n'
        f'[queue]\nbroker = "{broker}"\nname = "{queue_name}"\n{queue}\n{text}'
    )
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def mailgate(config: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run `python -m mailgate --config CONFIG ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        cwd=config.parent,
        check=False,
    )


def spawn_mailgate(config: Path, *args: str) -> subprocess.Popen[str]:
    """Start `python -m mailgate --config CONFIG ARGS` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=config.parent,
    )


def poison(store: Store, subject: str = "poison") -> None:
    """Make opening a ticket with ``subject`` fail inside the database (a real failure)."""
    with store.engine.begin() as conn:
        if store.is_sqlite:
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON tickets "
                f"WHEN NEW.subject = '{subject}' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.subject = '{subject}' THEN RAISE EXCEPTION 'poisoned'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON tickets "
                "FOR EACH ROW EXECUTE FUNCTION poison()"
            )


def cure(store: Store) -> None:
    """Remove what ``poison`` installed."""
    with store.engine.begin() as conn:
        if store.is_sqlite:
            conn.exec_driver_sql("DROP TRIGGER poison")
        else:
            conn.exec_driver_sql("DROP TRIGGER poison ON tickets")
            conn.exec_driver_sql("DROP FUNCTION poison()")


def scalar(store: Store, sql: str, **params: object) -> object:
    with store.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def ready_store(settings: Settings) -> Store:
    """A store for ``settings`` with the schema migrated (PostgreSQL too) and the
    config's directory synced, as `mailgate db upgrade` then a start would leave it."""
    migrate(settings.database.url)
    return open_store(settings)
