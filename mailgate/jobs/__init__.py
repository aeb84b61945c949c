"""Background work on dramatiq: enqueue ids after commit; actors, reconciler, worker.

Intake edges call ``enqueue_inbound`` once the raw message is committed. It never
raises: a broker that is down only delays the message, because the row stays
``received`` and the reconciler enqueues it again (DESIGN.md §1).
"""

from __future__ import annotations

import logging
from typing import Any

from mailgate.core.settings import Settings
from mailgate.core.states import PENDING_NOTICES
from mailgate.db.store import Store
from mailgate.jobs.broker import (
    INBOUND_ACTOR,
    NOTICE_ACTOR,
    is_embedded,
    queue_names,
    send,
    shared_broker,
)

log = logging.getLogger(__name__)

__all__ = ["enqueue_inbound", "enqueue_notice", "is_embedded", "queue_notices_after_commit"]


def enqueue_inbound(settings: Settings, inbound_id: int) -> bool:
    """Queue stored message ``inbound_id`` for processing; True when a broker took it.

    With the embedded broker there is nothing to send: the caller processes inline
    (``mailgate ingest``, the SMTP receiver) and an embedded worker in this process
    is woken to look at the database.
    """
    if is_embedded(settings):
        from mailgate.jobs import embedded

        embedded.wake()
        return False
    return _enqueue(settings, "inbound", INBOUND_ACTOR, inbound_id)


def enqueue_notice(settings: Settings, notice_id: int) -> bool:
    """Queue outbox row ``notice_id`` for sending; True when a broker took it."""
    if is_embedded(settings):
        from mailgate.jobs import embedded

        embedded.wake()
        return False
    return _enqueue(settings, "notices", NOTICE_ACTOR, notice_id)


def queue_notices_after_commit(store: Store, settings: Settings) -> None:
    """Have ``store`` queue every notice a transaction wrote, once it commits: what the
    portal, the API and the CLI write reaches the broker at once, not only when the
    reconciler finds it. The embedded queue's worker is woken (in this process) instead.
    The mail path and the SLA tick of a worker queue their own notices; not this."""

    def queue(info: dict[str, Any]) -> None:
        for notice_id in info.get(PENDING_NOTICES, ()):
            enqueue_notice(settings, notice_id)

    store.after_commit.append(queue)


def _enqueue(settings: Settings, kind: str, actor: str, item_id: int) -> bool:
    names = queue_names(settings)
    try:
        send(shared_broker(settings), getattr(names, kind), actor, item_id)
    except Exception as exc:  # noqa: BLE001 - the row is committed; the reconciler resends it
        log.warning("could not enqueue %s %s (the reconciler will): %s", kind, item_id, exc)
        return False
    return True
