"""What happens to a message once it is stored: the one seam between receivers and the queue.

Receivers call ``hand_off`` after the raw bytes are committed and never wait on its
outcome. Today it processes inline with the embedded broker; a broker-backed queue
replaces the body of this one function with an enqueue of the id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from mailgate.processing import process
from mailgate.settings import Settings
from mailgate.store import Store

log = logging.getLogger(__name__)


def hand_off(
    store: Store, inbound_id: int, *, settings: Settings, now: Callable[[], datetime]
) -> None:
    """Process stored message ``inbound_id``; never raises.

    A failure is already recorded on the row by ``process`` (invariant 8) and the
    reconciler retries rows left pending, so nothing here may reach the sender.
    """
    if settings.queue.broker != "embedded":
        # The worker role consumes the broker; rows stay pending until it (or the
        # reconciler) takes them.
        return
    try:
        process(store, inbound_id, settings=settings, now=now)
    except Exception as exc:  # noqa: BLE001 - recorded on the row; the sender already has 250
        log.warning("inbound %s: processing deferred: %s", inbound_id, type(exc).__name__)
