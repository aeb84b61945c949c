"""A group of stored messages processed in one transaction: the bulk import's path.

One message per transaction costs a commit, a lock, the directory read again and
SQLAlchemy's per-transaction work, for every message. A group shares them: its rows
are locked by one statement, the senders' accounts are looked up by one, and one
commit makes every outcome durable at once. Each message still ends with its own
outcome, decided exactly as ``mail.process`` decides it (``apply_locked``).

Nothing accepted may be lost: when any message of the group fails, the group's
transaction rolls back as a whole and its messages are processed again one at a time,
so a bad message is recorded as failed on its own row and blocks none behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import update

from mailgate.core.message import ParseRefused
from mailgate.core.prepared import Prepared
from mailgate.core.settings import Settings
from mailgate.db import thread_index
from mailgate.db.directory import look_up_customers
from mailgate.db.models import InboundMessage
from mailgate.db.store import Store
from mailgate.tickets import notice_counts
from mailgate.tickets.mail import ProcessResult, apply_locked, process

log = logging.getLogger(__name__)


def process_group(
    store: Store,
    jobs: Sequence[tuple[int, Prepared | ParseRefused]],
    *,
    settings: Settings,
    now: Callable[[], datetime],
) -> list[ProcessResult | None]:
    """Process stored messages (inbound id, prepared bytes) in one transaction; per job,
    its result, or None when it failed (recorded on its row, invariant 8)."""
    if not jobs:
        return []
    try:
        with store.transaction() as session:
            ids = [inbound_id for inbound_id, _ in jobs]
            # One statement locks every row of the group (the write lock, on SQLite), and
            # reads them after the lock is held: another worker's outcome is seen.
            locked = session.scalars(
                update(InboundMessage)
                .where(InboundMessage.id.in_(ids))
                .values(attempts=InboundMessage.attempts)
                .returning(InboundMessage)
                .execution_options(populate_existing=True)
            )
            rows = {row.id: row for row in locked}
            # The senders' accounts in one statement, not one per message.
            parsed = [p.parsed for _, p in jobs if isinstance(p, Prepared)]
            senders = [p.sender.email.lower() for p in parsed if p.sender is not None]
            look_up_customers(session, senders)
            if session.get_bind().dialect.name == "sqlite":
                # What each message would ask again, in one statement each for the whole
                # group (the write lock held: nothing else writes until the commit):
                # the Message-IDs it names, and the notices its counts and causes name.
                named = (m for p in parsed for m in (p.message_id, *p.in_reply_to, *p.references))
                thread_index.read_for_group(session, named)
                notice_counts.read_for_group(session, senders, rows.keys(), now=now())
            results: list[ProcessResult | None] = [
                apply_locked(session, rows[inbound_id], prepared, settings=settings, now=now)
                for inbound_id, prepared in jobs
            ]
        return results
    except Exception as exc:  # noqa: BLE001 - each message gets its own try below
        log.info("group of %s rolled back (%s); one at a time", len(jobs), type(exc).__name__)
    return [_alone(store, inbound_id, prepared, settings, now) for inbound_id, prepared in jobs]


def _alone(
    store: Store,
    inbound_id: int,
    prepared: Prepared | ParseRefused,
    settings: Settings,
    now: Callable[[], datetime],
) -> ProcessResult | None:
    try:
        return process(store, inbound_id, settings=settings, now=now, prepared=prepared)
    except Exception as exc:  # noqa: BLE001 - recorded on the row by process
        log.warning("inbound %s: processing deferred: %s", inbound_id, type(exc).__name__)
        return None
