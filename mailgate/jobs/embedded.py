"""The embedded queue: no broker, the database rows are the queue.

A worker polls for inbound rows ``received`` and due (``next_attempt_at`` passed)
and, once the outbound sender is installed, notices ``pending`` and due, and
runs them on a thread pool. Nothing lives only in memory, so work survives any
restart of a one-box install. ``--processes N`` splits rows by id modulo N so
the processes never race; two separate workers may pick the same row, which
idempotent processing turns into a no-op.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select

from mailgate.core.errors import TemporaryFailure
from mailgate.db.models import InboundMessage, Notice
from mailgate.jobs.reconciler import inbound_due, notices_due
from mailgate.jobs.sla_job import Every, check_once
from mailgate.jobs.tasks import Runtime, notices_available, run_inbound, run_notice
from mailgate.jobs.wakeup import WakeListener

log = logging.getLogger(__name__)
# How long an idle worker sleeps between looks at the database; enqueue_inbound in the
# same process, or a receiver in another (jobs.wakeup), wakes it at once.
POLL_SECONDS = 0.2
_wake = threading.Event()

Key = tuple[str, int]


def wake() -> None:
    """Make embedded workers in this process look at the database now."""
    _wake.set()


class EmbeddedWorker:
    """Polls the database and runs due work on ``threads`` threads."""

    def __init__(self, rt: Runtime, *, threads: int, index: int = 0, count: int = 1) -> None:
        self.rt = rt
        self.threads = max(1, threads)
        self.index, self.count = index, max(1, count)
        self.inflight: dict[Key, Future[float | None]] = {}
        # Work that asked to wait without being able to say so in the database
        # (the database itself was down): monotonic time before which to leave it.
        self.not_before: dict[Key, float] = {}
        self.notices = notices_available()
        # One process of a --processes group checks SLAs; the database keeps events once
        # even when other machines' workers check too.
        self.sla = Every(rt.settings.sla.check_interval_seconds) if index == 0 else None

    def run(self, stop: threading.Event, *, burst: bool) -> None:
        """Work until ``stop`` is set, or with ``burst`` until nothing is due."""
        # A receiver in another process (the SMTP role of `mailgate run`) wakes this
        # worker when it stores a message, and then leaves processing to it.
        listener = None if burst else WakeListener(self.rt.settings, wake)
        with ThreadPoolExecutor(self.threads, thread_name_prefix="mailgate-embedded") as pool:
            try:
                while not stop.is_set():
                    _wake.clear()
                    if self.sla is not None and self.sla.due():
                        # Its reminders are pending rows: _start_due picks them up.
                        check_once(self.rt)
                    self._collect()
                    started = self._start_due(pool)
                    if burst and not started and not self.inflight:
                        return
                    _wake.wait(POLL_SECONDS)
            finally:
                if listener is not None:
                    listener.close()  # from now on, receivers process their mail themselves
                # Finish what is running; anything not started stays due in the database.
                pool.shutdown(wait=True, cancel_futures=True)
                self._collect()

    def _start_due(self, pool: ThreadPoolExecutor) -> int:
        room = self.threads * 2 - len(self.inflight)
        if room <= 0:
            return 0
        try:
            due = self._due(room)
        except TemporaryFailure as exc:
            log.warning("embedded worker: database unavailable: %s", exc)
            return 0
        for key in due:
            future = pool.submit(self._run, key)
            self.inflight[key] = future
            future.add_done_callback(lambda _f: _wake.set())
        return len(due)

    def _due(self, limit: int) -> list[Key]:
        now = self.rt.now()
        clock = time.monotonic()
        self.not_before = {k: t for k, t in self.not_before.items() if t > clock}
        skip = set(self.inflight) | set(self.not_before)
        out: list[Key] = []
        with self.rt.store.transaction() as session:
            kinds: list[tuple[str, type[InboundMessage] | type[Notice], object]] = [
                ("inbound", InboundMessage, inbound_due(now, timedelta(0)))
            ]
            if self.notices:
                kinds.append(("notice", Notice, notices_due(now, timedelta(0))))
            for kind, model, condition in kinds:
                ids = [i for k, i in skip if k == kind]
                query = select(model.id).where(condition)  # type: ignore[arg-type]
                if self.count > 1:
                    query = query.where(model.id % self.count == self.index)
                if ids:
                    query = query.where(model.id.not_in(ids))
                out += [(kind, i) for i in session.scalars(query.order_by(model.id).limit(limit))]
        return out[:limit]

    def _run(self, key: Key) -> float | None:
        kind, item_id = key
        if kind == "inbound":
            return run_inbound(self.rt, item_id)
        return run_notice(self.rt, item_id)

    def _collect(self) -> None:
        for key, future in list(self.inflight.items()):
            if not future.done():
                continue
            del self.inflight[key]
            if future.cancelled():
                continue
            try:
                delay = future.result()
            except Exception:
                log.exception("embedded worker: %s %s failed", *key)
                delay = self.rt.backoff(1)
            if delay is not None:
                self.not_before[key] = time.monotonic() + delay
