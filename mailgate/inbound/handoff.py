"""What happens to a message once it is stored: the one seam between every receiver
(SMTP, IMAP, `mailgate ingest`) and the queue.

Receivers call ``hand_off`` after the raw bytes are committed and never depend on its
outcome: with the embedded queue it processes inline and sends the notices; with a
broker it enqueues the id for ``mailgate worker``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from mailgate.core.message import ParseRefused
from mailgate.core.prepared import Prepared, prepare
from mailgate.core.settings import Settings
from mailgate.core.states import InboundState
from mailgate.db.store import Store
from mailgate.jobs import enqueue_inbound, is_embedded
from mailgate.outbound.sender import send_now
from mailgate.tickets.mail import ProcessResult, process

log = logging.getLogger(__name__)
# The outcome a caller sees for a message handed to a broker's worker.
QUEUED = "queued"


def hand_off(
    store: Store,
    inbound_id: int,
    *,
    settings: Settings,
    now: Callable[[], datetime],
    raw: bytes | None = None,
) -> ProcessResult | None:
    """Process (or enqueue) stored message ``inbound_id``; never raises.

    Returns the result when processed here, a ``received``/``queued`` result when a
    worker will process it, and None when processing failed: the failure is already
    recorded on the row by ``process`` (invariant 8) and a lost enqueue is repaired by
    the reconciler, so nothing here may reach the sender, who already has their answer.
    ``raw``: the stored bytes, when the caller has them (saves reading them back).
    """
    if not is_embedded(settings):
        enqueue_inbound(settings, inbound_id)  # never raises; the row stays pending
        return ProcessResult(inbound_id, InboundState.RECEIVED, QUEUED)
    try:
        prepared = prepare(raw, settings) if raw is not None else None
        return process_and_send(store, inbound_id, settings=settings, now=now, prepared=prepared)
    except Exception as exc:  # noqa: BLE001 - recorded on the row; the sender has their answer
        log.warning("inbound %s: processing deferred: %s", inbound_id, type(exc).__name__)
        return None


def process_and_send(
    store: Store,
    inbound_id: int,
    *,
    settings: Settings,
    now: Callable[[], datetime],
    prepared: Prepared | ParseRefused | None = None,
) -> ProcessResult:
    """``process`` (one transaction), then deliver its pending notices right after the
    commit, when the queue is the embedded one. With a broker, the worker's actors do
    the same two steps apart."""
    result = process(store, inbound_id, settings=settings, now=now, prepared=prepared)
    if result.notice_ids and settings.queue.broker == "embedded":
        send_now(store, result.notice_ids, settings=settings, now=now)
    return result
