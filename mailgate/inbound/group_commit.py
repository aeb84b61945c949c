"""Group commit for receivers on an event loop: what many sessions hand in while one
commit runs is committed together by the next, one transaction and one disk flush.

A dedicated thread takes whatever has queued the moment a commit ends, so batches
form without any waiting and an idle receiver commits a lone message at once. Each
caller hears back only after the commit that holds its message (invariant 1).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mailgate.core.errors import DatabaseBusy, PermanentFailure
from mailgate.db.store import Store
from mailgate.inbound.intake import Accepted, Envelope, Incoming, accept_many

log = logging.getLogger(__name__)

_Job = tuple[Incoming, "asyncio.Future[Accepted]"]
_STOP = object()  # put on the queue by close()
# How long SQLite itself waits for the write lock in one try, and the pause between tries.
_SQLITE_TRY_MS = 2
_RETRY_SECONDS = 0.0005
# How long the receiver keeps its precedence over background writers once it has no
# message in hand: the moment between a client's 250 and its next message is the
# worker's chance to take the write lock, and the next commit would wait out its
# transaction (benchmarks/smtp_accept.py, `run` at 16 clients).
PRECEDENCE_LINGER_SECONDS = 0.005


def _retrieve(future: asyncio.Future[Accepted]) -> None:
    # The session may have gone (client hung up); its outcome is still settled here
    # so asyncio does not report an exception nobody awaited.
    if not future.cancelled():
        future.exception()


class GroupCommit:
    """Commits messages handed in on one event loop, in batches, on a thread of its own.

    ``on_stored(inbound_id)`` runs on the loop for every message committed, whether or
    not its session is still there to hear ``250``.
    """

    def __init__(
        self,
        store: Store,
        *,
        source: str,
        max_bytes: int,
        now: Callable[[], datetime],
        on_stored: Callable[[int], None],
        max_batch: int = 64,
        max_batch_bytes: int = 32 * 1024 * 1024,
        contended: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store = store
        # The same database, asking SQLite to wait only briefly for the write lock (see
        # _commit); the store itself where there is no such lock (PostgreSQL).
        on_file = store.is_sqlite and ":memory:" not in store.url
        self.lock_store = (
            Store(store.url, sqlite_busy_timeout_ms=_SQLITE_TRY_MS) if on_file else store
        )
        self.busy_seconds = store.sqlite_busy_timeout_ms / 1000
        # Whether another process writes to the database now (a worker beside the
        # receiver): only then is polling for the lock better than SQLite's own wait.
        # Against a thread of this process, the polls would only take the interpreter
        # from the thread holding the lock.
        self.contended = contended
        self.source = source
        self.max_bytes = max_bytes
        self.now = now
        self.on_stored = on_stored
        self.max_batch = max_batch
        self.max_batch_bytes = max_batch_bytes
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = 0  # touched on the loop only
        self._idle: asyncio.Event | None = None
        # Held, on the loop, while messages are in hand and for a moment after: the
        # worker's writes wait for it (db.write_turns), processing waits for receipt.
        self._precedence = store.precedence()
        self._letting_go: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> int:
        """Messages handed in and not yet answered."""
        return self._pending

    async def accept(self, raw: bytes, envelope: Envelope) -> Accepted:
        """Commit ``raw``; raises like ``intake.accept`` (PermanentFailure, TemporaryFailure)."""
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._idle = asyncio.Event()
            self._thread = threading.Thread(
                target=self._run, name="mailgate-group-commit", daemon=True
            )
            self._thread.start()
        assert self._loop is not None and self._idle is not None
        future: asyncio.Future[Accepted] = self._loop.create_future()
        future.add_done_callback(_retrieve)
        self._pending += 1
        self._idle.clear()
        if self._precedence is not None:
            self._call_off_letting_go()
            self._precedence.hold()
        self._queue.put((Incoming(raw, envelope), future))
        # Shielded: a session cancelled by a hang-up must not cancel its commit.
        return await asyncio.shield(future)

    async def settle(self) -> None:
        """Return once everything handed in so far is committed or refused."""
        if self._idle is not None and self._pending:
            await self._idle.wait()

    def close(self) -> None:
        """Stop the thread after what is queued; call after ``settle``."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self.lock_store is not self.store:
            self.lock_store.engine.dispose()
        self._call_off_letting_go()
        if self._precedence is not None:
            self._precedence.release()

    def _run(self) -> None:
        carried: Any = None  # taken off the queue but left for the next batch
        while True:
            job = carried if carried is not None else self._queue.get()
            carried = None
            if job is _STOP:
                return
            batch, size = [job], len(job[0].raw)
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP or size + len(more[0].raw) > self.max_batch_bytes:
                    carried = more
                    break
                batch.append(more)
                size += len(more[0].raw)
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        results: list[Accepted | PermanentFailure | BaseException]
        # SQLite's own wait for the write lock backs off to 100 ms between tries, so a
        # worker writing in another process would win the lock again and again while the
        # clients wait. The lock store gives up after a few milliseconds, and this loop
        # tries again every half millisecond, up to the configured busy timeout.
        deadline = time.monotonic() + self.busy_seconds
        store = self.lock_store if self.contended() else self.store
        while True:
            try:
                results = list(
                    accept_many(
                        store,
                        [item for item, _ in batch],
                        source=self.source,
                        max_bytes=self.max_bytes,
                        now=self.now,
                    )
                )
            except DatabaseBusy as exc:
                if time.monotonic() < deadline:
                    time.sleep(_RETRY_SECONDS)
                    continue
                results = [exc] * len(batch)
            except Exception as exc:  # noqa: BLE001 - every waiter hears it and answers 4xx
                results = [exc] * len(batch)
            break
        if len(results) != len(batch):
            # Never leave a session waiting for an answer that cannot come.
            results = [RuntimeError("accept_many answered the wrong number of items")] * len(batch)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._answer, batch, results)

    def _answer(self, batch: list[_Job], results: list[Accepted | BaseException]) -> None:
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, Accepted):
                self._stored(result.inbound_id)
                future.set_result(result)
            else:
                future.set_exception(result)
        self._pending -= len(batch)
        if not self._pending and self._idle is not None:
            self._idle.set()
            if self._precedence is not None and self._loop is not None:
                self._letting_go = self._loop.call_later(PRECEDENCE_LINGER_SECONDS, self._let_go)

    def _call_off_letting_go(self) -> None:
        """Call off a pending release of precedence (a message came, or closing)."""
        if self._letting_go is not None:
            self._letting_go.cancel()
            self._letting_go = None

    def _let_go(self) -> None:
        self._letting_go = None
        if not self._pending and self._precedence is not None:
            self._precedence.release()

    def _stored(self, inbound_id: int) -> None:
        try:
            self.on_stored(inbound_id)
        except Exception:  # the message is safe; the reconciler will pick it up
            log.exception("inbound %s: stored, but could not be handed on", inbound_id)
