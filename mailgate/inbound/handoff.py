"""What happens to a message once it is stored: the one seam between receivers and the queue.

Receivers (SMTP, IMAP) call ``hand_off`` after the raw bytes are committed and never
wait on its outcome: with the embedded queue it processes inline and sends the
notices; with a broker it enqueues the id for ``mailgate worker``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from mailgate.handling import process_and_send
from mailgate.jobs import enqueue_inbound, is_embedded
from mailgate.settings import Settings
from mailgate.store import Store

log = logging.getLogger(__name__)


def hand_off(
    store: Store, inbound_id: int, *, settings: Settings, now: Callable[[], datetime]
) -> None:
    """Process (or enqueue) stored message ``inbound_id``; never raises.

    A failure is already recorded on the row by ``process`` (invariant 8), a lost
    enqueue is repaired by the reconciler, so nothing here may reach the sender.
    """
    if not is_embedded(settings):
        enqueue_inbound(settings, inbound_id)  # never raises; the row stays pending
        return
    try:
        process_and_send(store, inbound_id, settings=settings, now=now)
    except Exception as exc:  # noqa: BLE001 - recorded on the row; the sender already has 250
        log.warning("inbound %s: processing deferred: %s", inbound_id, type(exc).__name__)
