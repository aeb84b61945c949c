"""The dramatiq actors: each takes an id, loads the row, calls one task (``tasks.py``).

Actors are declared on an explicit broker for an explicit runtime (store,
settings, clock), so a process can hold exactly the broker its config names.
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.middleware import CurrentMessage

from mailgate.jobs.broker import INBOUND_ACTOR, NOTICE_ACTOR, SLA_ACTOR, QueueNames, send
from mailgate.jobs.sla_job import check_once
from mailgate.jobs.tasks import (
    Runtime,
    notices_available,
    pending_notice_ids,
    run_inbound,
    run_notice,
)

log = logging.getLogger(__name__)


def _retries() -> int:
    message = CurrentMessage.get_current_message()
    return int(message.options.get("retries", 0)) if message is not None else 0


def _retry_in(seconds: float) -> dramatiq.Retry:
    return dramatiq.Retry(delay=max(1, int(seconds * 1000)))


Actor = dramatiq.Actor[[int], None]


def _send_notices(
    broker: dramatiq.Broker, runtime: Runtime, names: QueueNames, inbound_id: int
) -> None:
    """Queue the notices written with this message's outcome, right after its commit.

    Never raises: the message is processed and its notices are committed rows, so a
    broker (or database) that is away now only leaves them to the reconciler. Raising
    would make dramatiq log the processed message as failed, with a traceback.
    """
    try:
        for notice_id in pending_notice_ids(runtime, inbound_id):
            send(broker, names.notices, NOTICE_ACTOR, notice_id)
    except Exception as exc:  # noqa: BLE001 - the reconciler sends what is still pending
        log.warning(
            "inbound %s: notices left to the reconciler: %s: %s",
            inbound_id,
            type(exc).__name__,
            " ".join(str(exc).split())[:300],
        )


def declare_actors(
    broker: dramatiq.Broker, runtime: Runtime, names: QueueNames
) -> tuple[Actor, Actor, Actor]:
    """Declare the inbound, notice and SLA check actors on ``broker``; returns them."""

    def process_inbound(inbound_id: int) -> None:
        delay = run_inbound(runtime, inbound_id, retries=_retries())
        if delay is not None:
            raise _retry_in(delay)
        if notices_available():
            _send_notices(broker, runtime, names, inbound_id)

    def send_notice(notice_id: int) -> None:
        delay = run_notice(runtime, notice_id, retries=_retries())
        if delay is not None:
            raise _retry_in(delay)

    def check_sla(_tick: int) -> None:
        # The reminders go out right away; the reconciler would find them otherwise.
        for notice_id in check_once(runtime):
            send(broker, names.notices, NOTICE_ACTOR, notice_id)

    inbound = dramatiq.actor(actor_name=INBOUND_ACTOR, queue_name=names.inbound, broker=broker)
    notice = dramatiq.actor(actor_name=NOTICE_ACTOR, queue_name=names.notices, broker=broker)
    sla = dramatiq.actor(actor_name=SLA_ACTOR, queue_name=names.notices, broker=broker)
    return inbound(process_inbound), notice(send_notice), sla(check_sla)
