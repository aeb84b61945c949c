"""The broker, chosen by ``queue.broker``: the one module that builds dramatiq brokers.

The broker carries only ids (DESIGN.md §1), so Redis and RabbitMQ are
interchangeable and a lost message costs latency, never work: the reconciler
re-enqueues what the database still shows as pending. ``embedded`` builds no
broker at all: the database rows are the queue (see ``embedded.py``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import dramatiq
from dramatiq.middleware import CurrentMessage, Retries

from mailgate.core.errors import ConfigError
from mailgate.core.settings import Settings

EMBEDDED = "embedded"
INBOUND_ACTOR = "process_inbound"
NOTICE_ACTOR = "send_notice"
# Periodic, on the notices queue; its one argument is the enqueuing worker's tick number.
SLA_ACTOR = "check_sla"

_shared: dict[str, dramatiq.Broker] = {}
_shared_lock = threading.Lock()


@dataclass(frozen=True)
class QueueNames:
    inbound: str
    notices: str


def queue_names(settings: Settings) -> QueueNames:
    return QueueNames(f"{settings.queue.name}-inbound", f"{settings.queue.name}-notices")


def is_embedded(settings: Settings) -> bool:
    return settings.queue.broker == EMBEDDED


def _only_explicit_retries(_retries: int, exc: BaseException) -> bool:
    # Actors decide retries themselves from the database row (attempts, backoff) and
    # raise Retry; anything else escaping an actor is a bug, left to the reconciler.
    return isinstance(exc, dramatiq.Retry)


def make_broker(settings: Settings) -> dramatiq.Broker:
    """A new broker for ``queue.broker`` (Redis or RabbitMQ URL), set as dramatiq's global."""
    url = settings.queue.broker
    middleware = [CurrentMessage(), Retries(retry_when=_only_explicit_retries)]
    broker: dramatiq.Broker
    try:
        if url.startswith(("redis://", "rediss://")):
            from dramatiq.brokers.redis import RedisBroker

            broker = RedisBroker(url=url, middleware=middleware)  # type: ignore[no-untyped-call]  # dramatiq ships no types for it
        elif url.startswith(("amqp://", "amqps://")):
            from dramatiq.brokers.rabbitmq import RabbitmqBroker

            # Publisher confirms: an enqueue that returns has reached the broker.
            broker = RabbitmqBroker(url=url, middleware=middleware, confirm_delivery=True)
        else:
            raise ConfigError([f"queue.broker: no broker to build for {url!r}"])
    except ImportError as exc:
        extra = "redis" if url.startswith("redis") else "rabbitmq"
        raise ConfigError(
            [f"queue.broker: driver missing (pip install 'mailgate[{extra}]'): {exc}"]
        ) from None
    dramatiq.set_broker(broker)
    return broker


def shared_broker(settings: Settings) -> dramatiq.Broker:
    """This process's broker for ``settings``, built on first use (intake edges)."""
    with _shared_lock:
        broker = _shared.get(settings.queue.broker)
        if broker is None:
            broker = _shared[settings.queue.broker] = make_broker(settings)
        return broker


def use_broker(settings: Settings, broker: dramatiq.Broker) -> None:
    """Make ``broker`` the one ``shared_broker`` returns (a worker enqueues on its own)."""
    with _shared_lock:
        _shared[settings.queue.broker] = broker


def forget_brokers() -> None:
    """Close and drop every shared broker (tests, and a worker shutting down)."""
    with _shared_lock:
        brokers = list(_shared.values())
        _shared.clear()
    for broker in brokers:
        broker.close()


def send(
    broker: dramatiq.Broker, queue: str, actor: str, item_id: int, delay_ms: int | None = None
) -> None:
    """Put ``actor(item_id)`` on ``queue``; messages carry nothing but the id."""
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=queue, actor_name=actor, args=(item_id,), kwargs={}, options={}
    )
    broker.enqueue(message, delay=delay_ms)


def ping_broker(url: str, *, timeout: float) -> None:
    """Connect to the Redis or RabbitMQ broker at ``url`` and hang up; raises when it
    cannot (the caller words the reason). The embedded queue needs no ping."""
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    else:
        import pika

        params = pika.URLParameters(url)
        params.socket_timeout = timeout
        params.connection_attempts = 1
        pika.BlockingConnection(params).close()
