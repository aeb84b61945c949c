"""Background work on dramatiq: enqueue ids after commit; actors, reconciler, worker.

Intake edges call ``enqueue_inbound`` once the raw message is committed. It never
raises: a broker that is down only delays the message, because the row stays
``received`` and the reconciler enqueues it again (DESIGN.md §1).
"""

from __future__ import annotations

import logging

from mailgate.core.settings import Settings
from mailgate.jobs.broker import (
    INBOUND_ACTOR,
    NOTICE_ACTOR,
    is_embedded,
    queue_names,
    send,
    shared_broker,
)

log = logging.getLogger(__name__)

__all__ = ["enqueue_inbound", "enqueue_notice", "is_embedded"]


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


def _enqueue(settings: Settings, kind: str, actor: str, item_id: int) -> bool:
    names = queue_names(settings)
    try:
        send(shared_broker(settings), getattr(names, kind), actor, item_id)
    except Exception as exc:  # noqa: BLE001 - the row is committed; the reconciler resends it
        log.warning("could not enqueue %s %s (the reconciler will): %s", kind, item_id, exc)
        return False
    return True
