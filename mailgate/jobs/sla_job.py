"""The SLA check as worker work: run every ``sla.check_interval_seconds``.

The embedded worker calls ``check_once`` from its loop; a dramatiq worker enqueues the
``check_sla`` actor, which calls it. Either way the database keeps each due event
once, so several workers checking at once only repeat a cheap read.
"""

from __future__ import annotations

import logging
import time

from mailgate.core.errors import TemporaryFailure
from mailgate.jobs.tasks import Runtime
from mailgate.tickets import sla_check

log = logging.getLogger(__name__)


def check_once(rt: Runtime) -> list[int]:
    """One pass; the ids of the reminders it wrote. Never raises: a failed pass is
    logged and the next one catches up (nothing was stored)."""
    if not rt.settings.sla.enabled:
        return []
    try:
        return sla_check.run_check(rt.store, rt.settings, rt.now()).notice_ids
    except TemporaryFailure as exc:
        log.warning("sla check: database unavailable: %s", exc)
    except Exception:
        log.exception("sla check failed; the next pass retries")
    return []


class Every:
    """A monotonic schedule: ``due()`` is true at once, then every ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.next = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now < self.next:
            return False
        self.next = now + self.seconds
        return True
