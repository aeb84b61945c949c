"""``mailgate worker``: consume the queue until SIGTERM/SIGINT, or with ``burst``
until nothing is due; several processes under one supervisor.

Graceful shutdown: on SIGTERM a worker stops taking work, lets each thread
finish the message in hand, and returns prefetched messages to the broker. A
message still running after ``STOP_TIMEOUT_MS`` is left unacknowledged, so the
broker redelivers it and the reconciler would find its row anyway.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING

from mailgate.core.errors import TemporaryFailure
from mailgate.core.settings import Settings
from mailgate.db.store import Store
from mailgate.jobs import embedded
from mailgate.jobs.actors import declare_actors
from mailgate.jobs.broker import (
    INBOUND_ACTOR,
    NOTICE_ACTOR,
    SLA_ACTOR,
    forget_brokers,
    is_embedded,
    make_broker,
    queue_names,
    send,
    use_broker,
)
from mailgate.jobs.reconciler import count_due, reconcile
from mailgate.jobs.sla_job import Every, check_once
from mailgate.jobs.tasks import Runtime, notices_available
from mailgate.ops import logs
from mailgate.ops.lifeline import die_with_parent

if TYPE_CHECKING:
    import dramatiq

log = logging.getLogger(__name__)
STOP_TIMEOUT_MS = 30_000
# A burst worker that sees due work, unchanged, with nothing in hand for this long
# re-enqueues it: its broker message was lost.
BURST_IDLE_SECONDS = 3.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def reconcile_every(settings: Settings) -> float:
    """How often a worker runs the reconciler: often enough to catch a stale row
    soon after it becomes stale, never more than once a second."""
    return float(max(1, min(60, settings.queue.reconcile_after_seconds // 2)))


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        embedded.wake()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_worker(
    settings: Settings,
    *,
    threads: int,
    burst: bool,
    store: Store | None = None,
    index: int = 0,
    count: int = 1,
    now: Callable[[], datetime] = utc_now,
    stop: threading.Event | None = None,
) -> None:
    """Run one worker process's work loop until stopped (or drained, with ``burst``)."""
    stop = stop or threading.Event()
    own_store = store is None
    if store is None:
        store = Store(
            settings.database.url,
            sqlite_busy_timeout_ms=settings.database.sqlite_busy_timeout_ms,
            background=True,  # its writes wait for the receivers' (db.write_turns)
        )
    rt = Runtime(store, settings, now)
    try:
        with _stop_on_signals(stop):
            if is_embedded(settings):
                worker = embedded.EmbeddedWorker(rt, threads=threads, index=index, count=count)
                worker.run(stop, burst=burst)
            else:
                _run_dramatiq(rt, threads=threads, burst=burst, stop=stop)
    finally:
        if own_store:
            rt.store.engine.dispose()


def _run_dramatiq(rt: Runtime, *, threads: int, burst: bool, stop: threading.Event) -> None:
    import dramatiq

    settings = rt.settings
    broker = make_broker(settings)
    use_broker(settings, broker)
    names = queue_names(settings)
    declare_actors(broker, rt, names)
    notices = notices_available()
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=200)

    def pass_(older_than: timedelta) -> None:
        try:
            reconcile(
                rt.store,
                now=rt.now(),
                older_than=older_than,
                enqueue_inbound=lambda i: send(broker, names.inbound, INBOUND_ACTOR, i),
                enqueue_notice=(lambda i: send(broker, names.notices, NOTICE_ACTOR, i))
                if notices
                else None,
            )
        except TemporaryFailure as exc:
            log.warning("reconciler: database unavailable: %s", exc)
        except Exception as exc:  # noqa: BLE001 - a broker hiccup must not stop the worker
            log.warning("reconciler: %s: %s", type(exc).__name__, exc)

    sla = Every(settings.sla.check_interval_seconds)
    try:
        stale = timedelta(seconds=settings.queue.reconcile_after_seconds)
        if burst:
            # Here rather than by the actor, so its reminders are due before the pass below.
            check_once(rt)
        # A burst run takes everything due, whatever became of its broker message;
        # before the consumers start, so work done meanwhile is not queued twice.
        pass_(timedelta(0) if burst else stale)
        worker.start()
        next_pass = time.monotonic() + reconcile_every(settings)
        idle_since, last_due = time.monotonic(), -1
        while not stop.is_set():
            if time.monotonic() >= next_pass:
                pass_(stale)
                next_pass = time.monotonic() + reconcile_every(settings)
            if not burst and settings.sla.enabled and sla.due():
                _enqueue_sla(broker, names.notices, sla)
            if burst:
                due = 0 if worker.work_queue.unfinished_tasks else _due(rt, notices)
                if worker.work_queue.unfinished_tasks or due != last_due:
                    idle_since, last_due = time.monotonic(), due
                elif due == 0:
                    return
                elif time.monotonic() - idle_since > BURST_IDLE_SECONDS:
                    pass_(timedelta(0))
                    idle_since = time.monotonic()
            stop.wait(0.05 if burst else 1.0)
    finally:
        worker.stop(timeout=STOP_TIMEOUT_MS)
        forget_brokers()


def _enqueue_sla(broker: dramatiq.Broker, queue: str, schedule: Every) -> None:
    try:
        send(broker, queue, SLA_ACTOR, int(time.time() // schedule.seconds))
    except Exception as exc:  # noqa: BLE001 - the next tick enqueues it again
        log.warning("sla check: could not enqueue: %s: %s", type(exc).__name__, exc)


def _due(rt: Runtime, notices: bool) -> int:
    try:
        return count_due(rt.store, now=rt.now(), notices=notices)
    except TemporaryFailure:
        return 1  # unknown: keep waiting


def _child(
    settings: Settings, threads: int, burst: bool, index: int, count: int, *, parent: int
) -> None:
    die_with_parent(parent)  # a SIGKILLed worker must not leave its processes behind
    logs.setup(settings.logging)  # as the parent: level, format, file, library noise
    run_worker(settings, threads=threads, burst=burst, index=index, count=count)


def run_workers(
    settings: Settings, *, processes: int, threads: int, burst: bool, store: Store | None = None
) -> int:
    """Run ``processes`` worker processes (1: this one); returns the exit status.

    SIGTERM or SIGINT to the supervisor is passed on to every child, each of which
    shuts down gracefully.
    """
    if processes <= 1:
        run_worker(settings, threads=threads, burst=burst, store=store)
        return 0
    # spawn, not fork: a child must not inherit the parent's database connections.
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(
            target=_child,
            args=(settings, threads, burst, index, processes),
            kwargs={"parent": os.getpid()},
            name=f"mailgate-worker-{index}",
        )
        for index in range(processes)
    ]
    stop = threading.Event()
    with _stop_on_signals(stop):
        for child in children:
            child.start()
        forwarded = False
        while any(child.is_alive() for child in children):
            if stop.is_set() and not forwarded:
                for child in children:
                    if child.pid is not None and child.is_alive():
                        child.terminate()  # SIGTERM: each child stops gracefully
                forwarded = True
            stop.wait(0.2)
        for child in children:
            child.join()
    # A child killed by signal N reports -N; a shell would say 128 + N.
    codes = [128 - c if c < 0 else c for c in (child.exitcode or 0 for child in children)]
    return max(codes)
