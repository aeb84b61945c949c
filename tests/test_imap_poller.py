"""The IMAP poller against a real Dovecot: store, acknowledge, resume, survive, never duplicate."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from mailgate.core.settings import SmtpSettings
from mailgate.db import rejection_counts as rejections
from mailgate.db.models import InboundMessage, Ticket
from mailgate.inbound.imap import cursor as imap_cursor
from mailgate.inbound.imap import folder as imap_folder
from mailgate.inbound.imap.poller import ImapPoller
from tests.dovecot import Dovecot, wait_until
from tests.imap_support import (
    FAST,
    Stores,
    count_rows,
    flagged_seen,
    mailbox,
    message,
    running,
    setup,
)

pytestmark = pytest.mark.dovecot


def test_new_mail_becomes_tickets_and_is_moved(
    dovecot: Dovecot, stores: Stores, sqlite_url: str
) -> None:
    """Appended mail is stored, processed into tickets, moved to a created Processed folder;
    a second pass finds nothing."""
    settings, store = setup(stores, sqlite_url, mailbox(dovecot, batch_size=2))
    dovecot.append("INBOX", [message(i) for i in range(5)])
    assert dovecot.count("Processed") == 0

    result = ImapPoller(settings.imap.mailboxes[0], store=store, settings=settings).run_once()

    assert (result.found, result.stored, result.duplicates, result.refused) == (5, 5, 0, 0)
    assert count_rows(store) == 5 and count_rows(store, Ticket) == 5
    assert dovecot.count("INBOX") == 0 and dovecot.count("Processed") == 5
    with store.transaction() as session:
        refs = set(session.scalars(select(InboundMessage.source_ref)))
        states = set(session.scalars(select(InboundMessage.state)))
    uidvalidity = imap_cursor.load(store, "support").uidvalidity  # type: ignore[union-attr]
    assert refs == {f"imap:support:{uidvalidity}:{uid}" for uid in range(1, 6)}
    assert states == {"processed"}
    again = ImapPoller(settings.imap.mailboxes[0], store=store, settings=settings).run_once()
    assert again.found == 0 and count_rows(store) == 5


class CrashAfterCommit(ImapPoller):
    """A poller that dies after the bytes are committed and before the server hears of it."""

    def after_store(self, client: IMAPClient, uids: Sequence[int]) -> None:
        raise RuntimeError("killed between store and move")


def test_crash_between_store_and_move_gives_no_duplicate(
    dovecot: Dovecot, stores: Stores, sqlite_url: str
) -> None:
    """Messages stored but never moved are recognised on restart: moved and processed,
    not stored twice."""
    settings, store = setup(stores, sqlite_url, mailbox(dovecot))
    dovecot.append("INBOX", [message(i) for i in range(3)])
    box = settings.imap.mailboxes[0]
    with pytest.raises(RuntimeError):
        CrashAfterCommit(box, store=store, settings=settings).run_once()
    assert count_rows(store) == 3 and dovecot.count("INBOX") == 3
    assert imap_cursor.load(store, "support") is None  # the cursor never passed them

    result = ImapPoller(box, store=store, settings=settings).run_once()

    assert (result.found, result.stored, result.duplicates) == (3, 0, 3)
    assert count_rows(store) == 3 and count_rows(store, Ticket) == 3
    assert dovecot.count("INBOX") == 0 and dovecot.count("Processed") == 3


def test_uidvalidity_change_gives_no_duplicate(
    dovecot: Dovecot, stores: Stores, db_url: str
) -> None:
    """A folder recreated with the same mail (new UIDVALIDITY) is read again from UID 1:
    old messages are recognised by content and only flagged, the new one is stored."""
    box = mailbox(dovecot, folder="Support", after_store="seen")
    settings, store = setup(stores, db_url, box)
    dovecot.append("Support", [message(i) for i in range(3)])
    assert ImapPoller(box, store=store, settings=settings).run_once().stored == 3
    first = imap_cursor.load(store, "support")
    assert first is not None and first.last_uid == 3

    def recreate() -> bool:
        with dovecot.client() as client:
            client.delete_folder("Support")
            client.create_folder("Support")
            for i in (0, 1, 2, 3):
                client.append("Support", message(i))
            return client.folder_status("Support", ["UIDVALIDITY"])[b"UIDVALIDITY"] != (
                first.uidvalidity
            )

    wait_until(recreate, what="a new UIDVALIDITY")
    result = ImapPoller(box, store=store, settings=settings).run_once()

    assert (result.found, result.stored, result.duplicates) == (4, 1, 3)
    assert count_rows(store) == 4 and count_rows(store, Ticket) == 4
    assert flagged_seen(dovecot, "Support") == 4
    now = imap_cursor.load(store, "support")
    assert now is not None and now.uidvalidity != first.uidvalidity and now.last_uid == 4


def test_idle_survives_a_dovecot_restart(
    dovecot: Dovecot, stores: Stores, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """In IDLE, new mail is picked up at once; after Dovecot restarts the poller reconnects
    and picks up mail appended after the restart."""
    settings, store = setup(stores, sqlite_url, mailbox(dovecot, poll_interval=3600))
    with running(
        poller := ImapPoller(
            settings.imap.mailboxes[0], store=store, settings=settings, timing=FAST
        )
    ):
        wait_until(lambda: poller.passes >= 1, what="the first pass")
        dovecot.append("INBOX", [message(1)])
        wait_until(lambda: dovecot.count("Processed") == 1, what="IDLE to report new mail")
        dovecot.restart()
        dovecot.append("INBOX", [message(2)])
        wait_until(lambda: dovecot.count("Processed") == 2, timeout=15, what="a reconnect")
    assert count_rows(store) == 2 and count_rows(store, Ticket) == 2
    assert any(
        "connection lost" in r.getMessage() or "cannot connect" in r.getMessage()
        for r in caplog.records
    )


def test_mail_arriving_during_a_pass_is_read_before_idle(
    dovecot: Dovecot, stores: Stores, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mail appended between a pass's SELECT and its UID SEARCH is not in the search
    result, and Dovecot announces it with the SEARCH reply, never again in IDLE: the
    poller must still read it before it idles (the race behind a flaky restart test)."""
    settings, store = setup(stores, sqlite_url, mailbox(dovecot, poll_interval=3600))
    search = imap_folder.uids_after
    appended = threading.Event()

    def append_then_search(client: IMAPClient, last_uid: int) -> list[int]:
        if not appended.is_set():
            appended.set()
            dovecot.append("INBOX", [message(1)])
        return search(client, last_uid)

    monkeypatch.setattr(imap_folder, "uids_after", append_then_search)
    with running(
        ImapPoller(settings.imap.mailboxes[0], store=store, settings=settings, timing=FAST)
    ):
        wait_until(lambda: dovecot.count("Processed") == 1, what="the mail from mid-pass")
    assert appended.is_set() and count_rows(store, Ticket) == 1


def test_idle_is_reissued_before_the_server_limit(
    dovecot: Dovecot, stores: Stores, sqlite_url: str
) -> None:
    """With nothing arriving, IDLE is still ended and re-issued every idle_restart seconds
    (RFC 2177: before the server's 30-minute timeout), each time after a fresh pass."""
    settings, store = setup(stores, sqlite_url, mailbox(dovecot, poll_interval=3600))
    timing = dataclasses.replace(FAST, idle_restart=0.2)
    poller = ImapPoller(settings.imap.mailboxes[0], store=store, settings=settings, timing=timing)
    with running(poller):
        wait_until(lambda: poller.passes >= 4, what="IDLE to be re-issued three times")
    assert count_rows(store) == 0


@pytest.mark.parametrize("capabilities", ["IMAP4rev1 LITERAL+ UIDPLUS", "IMAP4rev1 LITERAL+"])
def test_without_idle_or_move_it_polls_and_copies(
    stores: Stores, sqlite_url: str, capabilities: str
) -> None:
    """A server offering neither IDLE nor MOVE is polled every poll_interval, and mail is
    acknowledged with COPY, \\Deleted and an expunge (UID EXPUNGE where UIDPLUS is offered)."""
    server = Dovecot(capabilities=capabilities)
    try:
        server.start()
        with server.client() as client:
            assert not client.has_capability("IDLE") and not client.has_capability("MOVE")
        settings, store = setup(stores, sqlite_url, mailbox(server, poll_interval=1))
        poller = ImapPoller(settings.imap.mailboxes[0], store=store, settings=settings, timing=FAST)
        with running(poller):
            wait_until(lambda: poller.passes >= 1, what="the first pass")
            server.append("INBOX", [message(1), message(2)])
            wait_until(lambda: server.count("Processed") == 2, what="the next poll")
            assert server.count("INBOX") == 0  # copied, then expunged
        assert poller.passes >= 2 and count_rows(store, Ticket) == 2
    finally:
        server.cleanup()


def test_oversized_mail_is_left_in_place_and_batches_stay_bounded(
    dovecot: Dovecot, stores: Stores, sqlite_url: str
) -> None:
    """Mail over smtp.max_message_bytes is never downloaded: left in the folder and passed
    by the cursor. Batches respect batch_size and the byte budget."""
    limit = 4000
    box = mailbox(dovecot, batch_size=3)
    settings, store = setup(stores, sqlite_url, box, smtp=SmtpSettings(max_message_bytes=limit))
    sizes = [100, 2500, 2500, 2500, 9000, 100, 100, 100, 100]
    dovecot.append("INBOX", [message(i, padding=n) for i, n in enumerate(sizes)])
    with dovecot.client() as client:
        client.select_folder("INBOX")
        uids = client.search()
        batches = list(imap_folder.batches(client, uids, batch_size=3, max_bytes=limit))
    assert [[uid for uid, _ in b] for b in batches] == [[1, 2], [3], [4], [5], [6, 7, 8], [9]]

    result = ImapPoller(box, store=store, settings=settings).run_once()

    assert (result.found, result.stored, result.refused) == (9, 8, 1)
    assert dovecot.count("INBOX") == 1 and dovecot.count("Processed") == 8
    again = ImapPoller(box, store=store, settings=settings).run_once()
    assert again.found == 0  # the cursor moved past it: no warning every pass
    with store.transaction() as session:  # and it is counted once, for /metrics
        assert rejections.totals(session) == {("imap", "too_big"): 1}


class FailFirstMove(ImapPoller):
    """A watching poller whose first acknowledgement fails after the commit."""

    failed = False

    def after_store(self, client: IMAPClient, uids: Sequence[int]) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("move failed after commit")
        super().after_store(client, uids)


def test_watcher_survives_a_failure_after_commit(
    dovecot: Dovecot, stores: Stores, sqlite_url: str
) -> None:
    """In run_forever, a failure between store and move is logged and retried: the
    messages are then moved once and stored once."""
    settings, store = setup(stores, sqlite_url, mailbox(dovecot))
    dovecot.append("INBOX", [message(i) for i in range(4)])
    poller = FailFirstMove(settings.imap.mailboxes[0], store=store, settings=settings, timing=FAST)
    with running(poller):
        wait_until(lambda: dovecot.count("Processed") == 4, what="the retry to move them")
    assert poller.failed and dovecot.count("INBOX") == 0
    assert count_rows(store) == 4 and count_rows(store, Ticket) == 4


def test_stop_finishes_the_message_in_hand(
    dovecot: Dovecot, stores: Stores, sqlite_url: str
) -> None:
    """A stop request arriving while a message is being stored: that message is stored,
    acknowledged and processed, the rest of the batch is left for next time."""
    settings, store = setup(stores, sqlite_url, mailbox(dovecot, batch_size=10))
    dovecot.append("INBOX", [message(i) for i in range(5)])
    stop = threading.Event()

    def clock() -> datetime:
        # intake reads the clock for each message it stores: the request to stop
        # comes in while the second one is in hand.
        if count_rows(store) >= 1:
            stop.set()
        return datetime.now(UTC)

    result = ImapPoller(
        settings.imap.mailboxes[0], store=store, settings=settings, now=clock
    ).run_once(stop)

    assert (result.found, result.stored) == (5, 2)
    assert dovecot.count("Processed") == 2 and dovecot.count("INBOX") == 3
    assert count_rows(store, Ticket) == 2
    assert imap_cursor.load(store, "support").last_uid == 2  # type: ignore[union-attr]
    rest = ImapPoller(settings.imap.mailboxes[0], store=store, settings=settings).run_once()
    assert (rest.found, rest.stored) == (3, 3) and count_rows(store) == 5
