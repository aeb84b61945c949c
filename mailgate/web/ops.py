"""``/metrics`` (Prometheus) and ``/healthz``: what a monitoring system scrapes.

Every value is read from the database at scrape time, so every process on every
machine reports the same truth and nothing is lost on a restart.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mailgate.core.settings import Settings
from mailgate.core.sla import BREACH_KINDS
from mailgate.core.states import InboundState
from mailgate.db import rejection_counts as rejections
from mailgate.db.models import ImapCursor, InboundMessage, Notice, SlaEvent
from mailgate.db.store import Store
from mailgate.outbound.chat_delivery import targets
from mailgate.web.auth import client_ip
from mailgate.web.context import portal

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

# Processing times are taken from this many most recently processed messages.
LATENCY_WINDOW = 10_000
LATENCY_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)
# Long enough for a broker on the same network, short enough for a probe.
HEALTH_TIMEOUT = 3.0
# Headers a reverse proxy adds: a request carrying one came through a proxy, so its
# socket address (often 127.0.0.1) says nothing about the real client.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


class DatabaseCollector(Collector):
    """Counts read from the database on each scrape."""

    def __init__(
        self, store: Store, now: Callable[[], datetime], settings: Settings | None = None
    ) -> None:
        self.store = store
        self.now = now
        # Which kind of service each chat channel and webhook is, from the config (the
        # rows hold only the name): the label of mailgate_channel_notices_total.
        self.channel_kinds = (
            {name: t.kind for name, t in targets(settings).items()} if settings else {}
        )

    def collect(self) -> Iterator[Metric]:
        inbound = GaugeMetricFamily(
            "mailgate_inbound_messages_total",
            "Inbound messages in the intake ledger, by source, state and outcome.",
            labels=["source", "state", "outcome"],
        )
        pending = GaugeMetricFamily(
            "mailgate_inbound_pending", "Inbound messages received and not yet processed."
        )
        notices = GaugeMetricFamily(
            "mailgate_notices_total",
            "Mail notices in the outbox, by kind and state (pending, sent, failed, bounced, "
            "suppressed).",
            labels=["kind", "state"],
        )
        channel_notices = GaugeMetricFamily(
            "mailgate_channel_notices_total",
            "Chat and webhook notices in the outbox, by notice kind (webhook for a signed "
            "webhook's), channel kind (slack, mattermost, teams, webhook, signed_webhook; "
            "unknown for a channel no longer configured) and state.",
            labels=["kind", "channel_kind", "state"],
        )
        since_poll = GaugeMetricFamily(
            "mailgate_imap_seconds_since_poll",
            "Seconds since a mailbox's folder was last read.",
            labels=["mailbox"],
        )
        rejected = CounterMetricFamily(
            "mailgate_rejected",
            "Mail refused before it was stored, by source and reason; receivers write "
            "their counts every few seconds.",
            labels=["source", "reason"],
        )
        breaches = CounterMetricFamily(
            "mailgate_sla_breaches_total",
            "SLA breaches recorded (a first-response or resolution target passed), by kind.",
            labels=["kind"],
        )
        now = self.now()
        with self.store.transaction() as session:
            waiting = 0
            rows: Any = session.execute(
                select(
                    InboundMessage.source,
                    InboundMessage.state,
                    InboundMessage.outcome,
                    func.count(),
                ).group_by(InboundMessage.source, InboundMessage.state, InboundMessage.outcome)
            )
            for source, state, outcome, count in rows:
                inbound.add_metric([source, state, outcome], count)
                if state == InboundState.RECEIVED:
                    waiting += count
            pending.add_metric([], waiting)
            for kind, state, count in session.execute(
                select(Notice.kind, Notice.state, func.count())
                .where(Notice.channel == "")
                .group_by(Notice.kind, Notice.state)
            ):
                notices.add_metric([kind, state], count)
            by_channel: dict[tuple[str, str, str], int] = {}
            for channel, kind, state, count in session.execute(
                select(Notice.channel, Notice.kind, Notice.state, func.count())
                .where(Notice.channel != "")
                .group_by(Notice.channel, Notice.kind, Notice.state)
            ):
                key = (kind, self.channel_kinds.get(channel, "unknown"), state)
                by_channel[key] = by_channel.get(key, 0) + count
            for labels, count in sorted(by_channel.items()):
                channel_notices.add_metric(list(labels), count)
            for mailbox, updated_at in session.execute(
                select(ImapCursor.mailbox, ImapCursor.updated_at)
            ):
                since_poll.add_metric([mailbox], max(0.0, (now - updated_at).total_seconds()))
            for (source, reason), count in sorted(rejections.totals(session).items()):
                rejected.add_metric([source, reason], count)
            # Rows are never deleted, so the count only grows: a counter. Every kind is
            # shown, at 0 too, so a rate() works before the first breach.
            counts = dict.fromkeys(BREACH_KINDS, 0)
            for kind, count in session.execute(
                select(SlaEvent.kind, func.count()).where(SlaEvent.breached).group_by(SlaEvent.kind)
            ):
                counts[kind] = count
            for kind, count in counts.items():
                breaches.add_metric([kind], count)
            latency = _latency(
                session.execute(
                    select(InboundMessage.received_at, InboundMessage.processed_at)
                    .where(InboundMessage.processed_at.is_not(None))
                    .order_by(InboundMessage.id.desc())
                    .limit(LATENCY_WINDOW)
                )
            )
        yield inbound
        yield pending
        yield latency
        yield notices
        yield channel_notices
        yield since_poll
        yield rejected
        yield breaches


def _latency(rows: Any) -> HistogramMetricFamily:
    counts = [0] * len(LATENCY_BUCKETS)
    total, n = 0.0, 0
    for received_at, processed_at in rows:
        seconds = max(0.0, (processed_at - received_at).total_seconds())
        total += seconds
        n += 1
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                counts[i] += 1
    buckets: list[tuple[str, float]] = [
        (repr(bound), count) for bound, count in zip(LATENCY_BUCKETS, counts, strict=True)
    ]
    buckets.append(("+Inf", n))
    return HistogramMetricFamily(
        "mailgate_processing_seconds",
        f"Seconds from receipt to processing, over the last {LATENCY_WINDOW} processed messages.",
        buckets=buckets,
        sum_value=total,
    )


def registry_for(
    store: Store, now: Callable[[], datetime], settings: Settings | None = None
) -> CollectorRegistry:
    """A registry of this app's own: nothing of the process-global default registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(store, now, settings))
    return registry


def allowed(request: Request) -> bool:
    """Is the client in ``web.metrics_allow``? A request relayed by a proxy counts as
    the proxy's client (``web.client_ip_header``), or is refused when none is named."""
    web = portal(request).settings.web
    if not web.client_ip_header and any(h in request.headers for h in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in web.metrics_allow)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    if not allowed(request):
        raise HTTPException(404)
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
def healthz(request: Request) -> Response:
    """200 when the database answers and the broker is reachable; 503 naming what is not."""
    from mailgate.jobs.broker import ping_broker

    p = portal(request)
    parts = {"database": "ok", "broker": "ok"}
    try:
        with p.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - reported as unhealthy, the reason to the log
        log.warning("healthz: database: %s", exc)
        parts["database"] = "unreachable"
    if p.settings.queue.broker != "embedded":
        try:
            ping_broker(p.settings.queue.broker, timeout=HEALTH_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - reported as unhealthy, the reason to the log
            log.warning("healthz: broker: %s", type(exc).__name__)
            parts["broker"] = "unreachable"
    healthy = all(v == "ok" for v in parts.values())
    return JSONResponse(parts, 200 if healthy else 503, headers={"Cache-Control": "no-store"})
