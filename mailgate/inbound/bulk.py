"""Bulk import (``mailgate ingest --mbox/--maildir``): messages in groups, not one by one.

Per group of ``GROUP`` messages (fewer if they pass ``GROUP_BYTES``): one transaction
stores the raw bytes (``accept_many``, durable before anything else happens), one
processes them (``process_group``, which falls back to one at a time when a message
fails), and the notices they caused go out after that commit in one batch. Parsing is
pure and needs no lock, so with ``processes > 1`` it runs in worker processes, one group
ahead of the database work; at most two groups are in memory at once, whatever the
size of the mbox. The workers also send each group's notices once it has committed
(composing them is about a fifth of the work per message), so the importing process
only stores and processes.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import pickle
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from mailgate.core.errors import PermanentFailure
from mailgate.core.message import ParseRefused
from mailgate.core.prepared import Prepared, prepare
from mailgate.core.settings import Settings
from mailgate.core.states import Outcome
from mailgate.db.rejection_counts import RejectionCounter
from mailgate.db.store import Store
from mailgate.inbound import parse_pool
from mailgate.inbound.files import FileMessage
from mailgate.inbound.handoff import hand_off
from mailgate.inbound.intake import Accepted, Envelope, Incoming, accept_many, refusal_reason
from mailgate.jobs import is_embedded
from mailgate.outbound.sender import send_now
from mailgate.tickets.mail_group import process_group

# Messages per transaction: large enough that a commit and the directory read are shared
# by many, small enough that a group rolled back and redone one by one costs little.
GROUP = 100
# ... and at most this many bytes of mail: a group is in memory several times over (the
# raw bytes, the parsed parts, the rows until the commit), two groups at a time, and
# an import must stay within a small machine's memory whatever its messages' size.
GROUP_BYTES = 8 * 1024 * 1024

log = logging.getLogger(__name__)


@dataclass
class Totals:
    stored: int = 0
    duplicate: int = 0
    refused: int = 0
    tickets: int = 0
    failed: int = 0
    reasons: list[str] = field(default_factory=list)


def import_messages(
    store: Store,
    messages: Iterable[FileMessage],
    *,
    settings: Settings,
    envelope: Envelope,
    now: Callable[[], datetime],
    refused: RejectionCounter,
    processes: int = 1,
    progress: Callable[[int], None] = lambda done: None,
) -> Totals:
    """Store and process every message; what became of them."""
    totals = Totals()
    groups = _groups(messages)
    with _Parser(settings, processes) as parser:
        upcoming = parser.submit(next(groups, []))
        while upcoming.group:
            current = upcoming
            upcoming = parser.submit(next(groups, []))  # parsed while this one is written
            _import_group(
                current,
                store=store,
                parser=parser,
                envelope=envelope,
                now=now,
                refused=refused,
                totals=totals,
            )
            progress(len(current.group))
        parser.finish()
    return totals


def _groups(messages: Iterable[FileMessage]) -> Iterator[list[FileMessage]]:
    group: list[FileMessage] = []
    size = 0
    for message in messages:
        if group and (len(group) == GROUP or size + len(message.raw) > GROUP_BYTES):
            yield group
            group, size = [], 0
        group.append(message)
        size += len(message.raw)
    if group:
        yield group


@dataclass
class _Submitted:
    group: list[FileMessage]
    # The group's pieces being parsed in the workers, in order; None: parse here.
    pieces: list[Future[list[Prepared | ParseRefused]]] | None


class _Parser:
    """Parses groups here, or in worker processes when ``processes > 1``; sends the
    notices of committed groups here, or in those processes."""

    def __init__(self, settings: Settings, processes: int) -> None:
        self.settings = settings
        self.processes = processes
        self.pool: ProcessPoolExecutor | None = None
        self.sending: list[Future[None]] = []
        self.listener: logging.handlers.QueueListener | None = None
        if processes > 1:
            context = multiprocessing.get_context("spawn")
            # The workers' log records, handled here as this process's own.
            records = context.Queue()
            root = logging.getLogger()
            self.listener = logging.handlers.QueueListener(
                records, *root.handlers, respect_handler_level=True
            )
            self.listener.start()
            self.pool = ProcessPoolExecutor(
                max_workers=processes,
                mp_context=context,
                initializer=parse_pool.start,
                initargs=(settings, records, _levels()),
            )

    def __enter__(self) -> _Parser:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            # On an error, notices not yet sent stay pending, for `mailgate notices send`.
            self.pool.shutdown(cancel_futures=True)
        if self.listener is not None:
            self.listener.stop()

    def submit(self, group: list[FileMessage]) -> _Submitted:
        if self.pool is None or not group:
            return _Submitted(group, None)
        # Split in one piece per worker, so every core has its share of the group.
        size = max(1, -(-len(group) // self.processes))
        raws = [m.raw for m in group]
        pieces = [raws[i : i + size] for i in range(0, len(raws), size)]
        return _Submitted(
            group, [self.pool.submit(parse_pool.prepare_all, piece) for piece in pieces]
        )

    def results(self, submitted: _Submitted) -> list[Prepared | ParseRefused]:
        if submitted.pieces is None:
            return [prepare(m.raw, self.settings) for m in submitted.group]
        return [item for piece in submitted.pieces for item in piece.result()]

    def send(self, store: Store, notice_ids: list[int], now: Callable[[], datetime]) -> None:
        """Send committed notices: in a worker while the next group is processed, when
        there are workers and the clock can go to them (a test's lambda cannot)."""
        if self.pool is not None and _picklable(now):
            self.sending.append(self.pool.submit(parse_pool.send_notices, notice_ids, now))
        else:
            send_now(store, notice_ids, settings=self.settings, now=now)

    def finish(self) -> None:
        """Wait for the notices sent in workers. ``send_now`` records a failure on the
        notice and never raises; a worker that died leaves its notices pending."""
        for future in self.sending:
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. a worker killed: they stay pending
                log.warning(
                    "sending a group's notices failed (%s: %s); they stay pending for "
                    "`mailgate notices send`",
                    type(exc).__name__,
                    exc,
                )
        self.sending.clear()


def _levels() -> dict[str, int]:
    """The level of every logger given one here (the root, and the libraries whose
    noise ``ops.logs.setup`` quiets), for the workers to set alike."""
    named = logging.Logger.manager.loggerDict.items()
    levels = {name: lg.level for name, lg in named if isinstance(lg, logging.Logger) and lg.level}
    return {"": logging.getLogger().level, **levels}


def _picklable(value: object) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - any reason it cannot go to another process
        return False
    return True


def _import_group(
    submitted: _Submitted,
    *,
    store: Store,
    parser: _Parser,
    envelope: Envelope,
    now: Callable[[], datetime],
    refused: RejectionCounter,
    totals: Totals,
) -> None:
    group, settings = submitted.group, parser.settings
    accepted = accept_many(
        store,
        [Incoming(m.raw, envelope) for m in group],
        source="ingest",
        max_bytes=settings.smtp.max_message_bytes,
        now=now,
    )
    new: list[tuple[int, int]] = []  # (position in the group, inbound id)
    for position, (item, result) in enumerate(zip(group, accepted, strict=True)):
        if isinstance(result, PermanentFailure):
            totals.refused += 1
            totals.reasons.append(f"{item.ref}: {result}")
            refused.add(refusal_reason(result))
        elif isinstance(result, Accepted) and result.duplicate:
            totals.duplicate += 1
        else:
            totals.stored += 1
            new.append((position, result.inbound_id))
    if not new:
        return
    if not is_embedded(settings):
        for _, inbound_id in new:
            hand_off(store, inbound_id, settings=settings, now=now)  # queued for a worker
        return
    prepared = parser.results(submitted)
    results = process_group(
        store, [(inbound_id, prepared[pos]) for pos, inbound_id in new], settings=settings, now=now
    )
    pending: list[int] = []
    for processed in results:
        if processed is None:
            totals.failed += 1
            continue
        totals.tickets += processed.outcome == Outcome.NEW_TICKET
        pending += processed.notice_ids
    if pending and settings.queue.broker == "embedded":
        parser.send(store, pending, now)
