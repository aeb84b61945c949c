"""Group commit: several messages, one transaction, each answered only after it commits."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import ProgrammingError

from mailgate.core.errors import PermanentFailure, TemporaryFailure
from mailgate.db.store import Store
from mailgate.inbound import group_commit
from mailgate.inbound.group_commit import GroupCommit
from mailgate.inbound.intake import Accepted, Envelope, Incoming, accept, accept_many
from tests.file_locks import held_by_anyone
from tests.smtp_support import message, migrated_store, smtp_settings

ENVELOPE = Envelope("alice@customer.test", ("support@example.com",), "127.0.0.1", "c.test")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on SQLite or PostgreSQL."""
    opened = migrated_store(smtp_settings(db_url))
    yield opened
    opened.engine.dispose()


def test_accept_many_settles_each_item(store: Store, now: Callable[[], datetime]) -> None:
    """New, stored-before, twice-in-the-batch and not-an-email items each get their own answer."""
    earlier, fresh = message(1), message(2)
    before = accept(store, earlier, source="smtp", envelope=ENVELOPE, max_bytes=10**6, now=now)
    items = [
        Incoming(fresh, ENVELOPE),
        Incoming(earlier, ENVELOPE),
        Incoming(b"no headers here\r\n", ENVELOPE),
        Incoming(fresh, ENVELOPE),
        Incoming(message(3), ENVELOPE, source_ref="box:1:7"),
        Incoming(message(4), ENVELOPE, source_ref="box:1:7"),
    ]
    results = accept_many(store, items, source="smtp", max_bytes=10**6, now=now)
    new, old, bad, twin, by_ref, same_ref = results
    assert isinstance(new, Accepted) and not new.duplicate
    assert old == Accepted(before.inbound_id, duplicate=True, sha256=before.sha256)
    assert isinstance(bad, PermanentFailure)
    assert isinstance(twin, Accepted) and twin.duplicate and twin.inbound_id == new.inbound_id
    assert isinstance(by_ref, Accepted) and isinstance(same_ref, Accepted)
    assert same_ref.duplicate and same_ref.inbound_id == by_ref.inbound_id
    with store.transaction() as session:
        assert session.execute(text("SELECT count(*) FROM inbound_messages")).scalar() == 3


def test_concurrent_messages_share_transactions(store: Store, now: Callable[[], datetime]) -> None:
    """Twenty messages handed in together need far fewer than twenty commits; all answered."""
    commits: list[object] = []
    event.listen(store.engine, "commit", commits.append)
    stored: list[int] = []
    committer = GroupCommit(store, source="smtp", max_bytes=10**6, now=now, on_stored=stored.append)

    async def hand_in() -> list[Accepted]:
        try:
            return await asyncio.gather(
                *(committer.accept(message(i), ENVELOPE) for i in range(20))
            )
        finally:
            await committer.settle()
            committer.close()

    results = asyncio.run(hand_in())
    # All twenty are queued within microseconds while the first commit takes a disk
    # flush; one-at-a-time commits would be twenty.
    assert len(commits) <= 3
    assert len({r.inbound_id for r in results}) == 20
    assert sorted(stored) == sorted(r.inbound_id for r in results)


def test_one_message_after_another_each_commits(store: Store, now: Callable[[], datetime]) -> None:
    """The commit thread keeps serving: messages awaited one by one are each committed."""
    committer = GroupCommit(store, source="smtp", max_bytes=10**6, now=now, on_stored=print)

    async def one_by_one() -> list[Accepted]:
        try:
            # Bounded, so a commit thread that stopped serving fails the test, not hangs it.
            return [
                await asyncio.wait_for(committer.accept(message(i), ENVELOPE), 30) for i in range(5)
            ]
        finally:
            committer.close()

    assert [r.duplicate for r in asyncio.run(one_by_one())] == [False] * 5


def test_failed_transaction_fails_every_waiter(store: Store, now: Callable[[], datetime]) -> None:
    """When the batch cannot commit, every message in it hears the failure; none is stored."""
    committer = GroupCommit(store, source="smtp", max_bytes=10**6, now=now, on_stored=print)
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE inbound_messages RENAME TO inbound_away"))

    async def hand_in() -> list[Any]:
        calls = (committer.accept(message(i), ENVELOPE) for i in range(5))
        try:
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            committer.close()

    results = asyncio.run(hand_in())
    # SQLite reports a missing table as OperationalError (TemporaryFailure), PostgreSQL
    # as ProgrammingError. All five hear it, though not always as one failure: the commit
    # thread may take the first message alone before the others are queued (one
    # clean-clone CI run did), and each batch then fails on its own.
    assert all(isinstance(r, TemporaryFailure | ProgrammingError) for r in results)
    with store.engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM inbound_away")).scalar() == 0
        conn.execute(text("ALTER TABLE inbound_away RENAME TO inbound_messages"))


def test_a_receiver_with_messages_in_hand_goes_before_the_worker(
    tmp_path: Path, now: Callable[[], datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a message handed in until a moment after the last answer, the receiver
    claims precedence over background writers (db.write_turns), and then lets go."""
    monkeypatch.setattr(group_commit, "PRECEDENCE_LINGER_SECONDS", 0.5)
    database = tmp_path / "receiver.db"
    store = migrated_store(smtp_settings(f"sqlite:///{database}"))
    wanted = f"{database}-turn-wanted"
    committer = GroupCommit(store, source="smtp", max_bytes=10**6, now=now, on_stored=print)

    async def hand_in() -> None:
        turn = os.open(f"{database}-turn", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(turn, fcntl.LOCK_EX)  # the commit waits: the message stays in hand
        try:
            accepting = asyncio.create_task(committer.accept(message(1), ENVELOPE))
            await asyncio.sleep(0.2)
            assert not accepting.done()
            assert held_by_anyone(wanted), "no precedence with a message in hand"
        finally:
            os.close(turn)
        await asyncio.wait_for(accepting, 30)
        assert held_by_anyone(wanted), "let go the moment the last message was answered"
        await asyncio.sleep(1.0)
        assert not held_by_anyone(wanted), "precedence kept after the receiver went idle"

    try:
        asyncio.run(hand_in())
    finally:
        committer.close()
        store.engine.dispose()
