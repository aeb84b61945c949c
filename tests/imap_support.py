"""Shared by the IMAP poller tests: fast timings, sample mail, a poller run in a thread."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select

from mailgate.core.settings import ImapMailbox, ImapSettings, Settings
from mailgate.db.models import InboundMessage
from mailgate.db.store import Store
from mailgate.inbound.imap.poller import ImapPoller, Timing
from tests.conftest import make_settings
from tests.dovecot import PASSWORD, Dovecot

Stores = Callable[[Settings], Store]

# The production logic with waits short enough for tests.
FAST = Timing(
    lease_ttl=3.0,
    lease_renew=0.5,
    lease_retry=0.1,
    tick=0.05,
    retry_base=0.05,
    retry_cap=0.5,
    refused_base=300.0,
    refused_cap=600.0,
)


def message(i: int, *, padding: int = 0) -> bytes:
    """A distinct customer message; ``padding`` bytes make it bigger."""
    return (
        f"From: customer{i}@acme.test\r\nTo: support@example.com\r\n"
        f"Subject: Case {i}\r\nMessage-ID: <case-{i}@acme.test>\r\n\r\n"
        f"Please help with case {i}.\r\n{'x' * padding}\r\n"
    ).encode()


def mailbox(server: Dovecot, **changes: Any) -> ImapMailbox:
    box = ImapMailbox(
        name="support",
        port=server.port,
        security="none",
        username="support",
        password=PASSWORD,
        poll_interval=1,
    )
    return dataclasses.replace(box, **changes)


def count_rows(store: Store, model: type = InboundMessage) -> int:
    with store.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def flagged_seen(server: Dovecot, folder: str) -> int:
    with server.client() as client:
        client.select_folder(folder, readonly=True)
        return len(client.search(["SEEN"]))


def setup(stores: Stores, url: str, box: ImapMailbox, **sections: Any) -> tuple[Settings, Store]:
    settings = make_settings(url, imap=ImapSettings((box,)), **sections)
    return settings, stores(settings)


@contextmanager
def running(poller: ImapPoller) -> Iterator[threading.Event]:
    """Run ``poller.run_forever`` in a thread; stop it and require a prompt exit."""
    stop = threading.Event()
    thread = threading.Thread(target=poller.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "poller did not stop within 10 s"
