"""The ticket events a ``[[webhooks]]`` entry can subscribe to (issue 24): the one list
that check-config, the decision (``core.chat_notices``) and the docs read."""

from __future__ import annotations

from collections.abc import Iterable

CREATED = "ticket.created"
STATUS_CHANGED = "ticket.status_changed"
ASSIGNED = "ticket.assigned"
REPLIED = "ticket.replied"  # a customer's reply or an agent's
CLOSED = "ticket.closed"  # besides ticket.status_changed, when the new status closes it
SLA_BREACHED = "ticket.sla_breached"
EVENTS = (CREATED, STATUS_CHANGED, ASSIGNED, REPLIED, CLOSED, SLA_BREACHED)
ALL = "*"  # ``events = ["*"]``: every one of them, including any added later


def subscribed(events: Iterable[str], event: str) -> bool:
    """Does a webhook with ``events`` (its setting) want ``event``?"""
    wanted = set(events)
    return ALL in wanted or event in wanted
