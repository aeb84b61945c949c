"""The embedded queue: process one inbound message, then send the notices it caused,
in this process. With a broker, the worker's actors do the same two steps apart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from mailgate.outbound.sender import send_now
from mailgate.processing import ProcessResult, process
from mailgate.settings import Settings
from mailgate.store import Store


def process_and_send(
    store: Store, inbound_id: int, *, settings: Settings, now: Callable[[], datetime]
) -> ProcessResult:
    """``process`` (one transaction), then deliver its pending notices right after the
    commit, when the queue is the embedded one."""
    result = process(store, inbound_id, settings=settings, now=now)
    if result.notice_ids and settings.queue.broker == "embedded":
        send_now(store, result.notice_ids, settings=settings, now=now)
    return result
