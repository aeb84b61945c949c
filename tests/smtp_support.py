"""Helpers for the receiver tests: a real server on an ephemeral loopback port, messages,
raw-socket SMTP, and waiting by polling with a deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailgate.core.settings import Settings, SmtpSettings
from mailgate.db import queries
from mailgate.db.models import InboundMessage, Ticket
from mailgate.db.store import Store, open_store
from mailgate.inbound.smtp.server import ServerThread, SmtpServer
from tests.conftest import fixed_clock, make_settings
from tests.databases import migrate

SUPPORT = "support@example.com"


def smtp_settings(db_url: str, **smtp: Any) -> Settings:
    """Defaults on ``db_url`` with the receiver on an ephemeral 127.0.0.1 port."""
    return make_settings(db_url, smtp=SmtpSettings(**{"listen": "127.0.0.1:0", **smtp}))


def migrated_store(settings: Settings) -> Store:
    """``open_store`` after migrating: PostgreSQL is never migrated implicitly."""
    migrate(settings.database.url)
    return open_store(settings)


@dataclass
class Running:
    host: str
    port: int
    server: SmtpServer
    store: Store
    thread: ServerThread


@contextmanager
def serving(
    settings: Settings,
    *,
    on_stored: Callable[[int], None] | None = None,
    stop_timeout: float | None = 120.0,
    **server: Any,
) -> Iterator[Running]:
    """A started receiver; leaving the block stops it gracefully, which waits for the
    commits and processing of everything accepted (so tests join instead of sleeping)."""
    store = migrated_store(settings)
    smtp = SmtpServer(settings, store, now=fixed_clock(), on_stored=on_stored, **server)
    thread = ServerThread(smtp, stop_timeout=stop_timeout)
    try:
        host, port = thread.start()
        yield Running(host, port, smtp, store, thread)
    finally:
        thread.stop(timeout=(stop_timeout or 60) + 30)
        store.engine.dispose()


def message(
    n: int = 0,
    *,
    sender: str = "alice@customer.test",
    subject: str = "Printer on fire",
    body: str = "It is still burning.",
) -> bytes:
    """A distinct RFC 5322 message (own Message-ID) as CRLF bytes."""
    return (
        f"From: Alice <{sender}>\r\nTo: {SUPPORT}\r\nSubject: {subject} {n}\r\n"
        f"Message-ID: <m{n}.{time.monotonic_ns()}@customer.test>\r\n"
        f"Date: Mon, 05 Jan 2026 09:30:00 +0000\r\n\r\n{body}\r\n"
    ).encode()


@contextmanager
def reading(settings: Settings) -> Iterator[Session]:
    """A session on a store of its own, closed afterwards (the server's may be gone)."""
    store = Store(settings.database.url)
    try:
        with store.transaction() as session:
            yield session
    finally:
        store.engine.dispose()


def count(settings: Settings, model: type = InboundMessage) -> int:
    with reading(settings) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def tickets(settings: Settings) -> int:
    return count(settings, Ticket)


def rows(settings: Settings) -> list[InboundMessage]:
    with reading(settings) as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def ticket_list(settings: Settings) -> list[dict[str, Any]]:
    with reading(settings) as session:
        return queries.summaries(
            session, session.scalars(select(Ticket).order_by(Ticket.id.desc()))
        )


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


class RawClient:
    """A line-level SMTP client on a plain socket, for what smtplib will not do."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[int, list[str]]:
        """One (possibly multi-line) reply: its code and its lines' text."""
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            text = line.decode("utf-8").rstrip("\r\n")
            lines.append(text[4:])
            if text[3:4] != "-":
                return int(text[:3]), lines

    def closed_by_server(self) -> bool:
        """True once the server has closed its side (reads EOF)."""
        return self.file.readline() == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
