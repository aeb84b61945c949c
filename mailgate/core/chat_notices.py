"""Notices to chat channels and webhook rows (issue 24), decided with the mail ones.

Pure, called by ``notices.decide``. A chat channel is told what mail tells the people it
stands for: an account's channel the customer side's kinds, a team's channel the agent
side's, under the same screening as mail (nothing caused by automatic mail, no answer
to a sender that must not be answered). Unlike mail, a channel is told whether or not
one person would be (a customer's reply to an unassigned ticket still reaches its
team's channel). Each channel has its own hourly limit; over it, the row is kept
suppressed with the reason, as mail's is.

A webhook gets one row per ticket event it subscribes to, whatever the screening or the
rate: an integration wants every event, and nothing it is sent can reach a mailbox.
Both kinds of row are content-free: kinds, numbers, ids and system words.
"""

from __future__ import annotations

from typing import Any

from mailgate.core import sla, webhook_events
from mailgate.core.chat import CUSTOMER, TEAM
from mailgate.core.notices import (
    ACKNOWLEDGEMENT,
    AGENT_REPLIED,
    AGENT_REPLY,
    ANSWER_KINDS,
    ASSIGNED,
    ASSIGNMENT,
    CLOSED_TICKET,
    CUSTOMER_REPLIED,
    CUSTOMER_REPLY,
    INBOUND_EVENTS,
    MESSAGE_TO_CLOSED,
    NEW_TICKET,
    REMINDER,
    SLA_DUE,
    STATUS_CHANGE,
    STATUS_CHANGED,
    SUPPLIER_REPLIED,
    SUPPLIER_REPLY,
    WEBHOOK,
    Event,
    NoticeContext,
    NoticeSpec,
    chat_key,
    over_rate_limit,
    webhook_key,
)

# The kinds an event tells each side's channels: those of mail's, never the ones about
# no ticket (intake_refused, sign_in_link) nor a supplier's own (supplier_message).
_CUSTOMER_SIDE = {
    NEW_TICKET: ACKNOWLEDGEMENT,
    AGENT_REPLY: AGENT_REPLIED,
    STATUS_CHANGE: STATUS_CHANGED,
    MESSAGE_TO_CLOSED: CLOSED_TICKET,
}
_TEAM_SIDE = {
    NEW_TICKET: ASSIGNED,  # when it opened with an assignee
    ASSIGNMENT: ASSIGNED,
    CUSTOMER_REPLY: CUSTOMER_REPLIED,
    SLA_DUE: REMINDER,
    SUPPLIER_REPLY: SUPPLIER_REPLIED,
}
CHAT_KINDS = frozenset({*_CUSTOMER_SIDE.values(), *_TEAM_SIDE.values()})


def chat_kind(event: Event, owner_kind: str) -> str:
    """The notice kind ``event`` tells a channel of ``owner_kind``, or ``""``."""
    if event.webhooks_only:
        return ""
    if owner_kind == CUSTOMER:
        return _CUSTOMER_SIDE.get(event.kind, "")
    if owner_kind == TEAM:
        if event.kind in (NEW_TICKET, ASSIGNMENT) and not event.assignee:
            return ""
        return _TEAM_SIDE.get(event.kind, "")
    return ""


def chat_specs(event: Event, ctx: NoticeContext) -> list[NoticeSpec]:
    """One notice per channel of the ticket told by ``event``; screened as mail is (a
    notice mail would suppress for the inbound message's sake is not written at all),
    limited per channel."""
    if event.kind in INBOUND_EVENTS and ctx.automatic:
        return []
    specs: list[NoticeSpec] = []
    for channel in dict.fromkeys(ctx.chat):
        kind = chat_kind(event, channel.owner_kind)
        if not kind or (kind in ANSWER_KINDS and not ctx.answerable):
            continue
        key = chat_key(channel.name)
        suppressed = ctx.suppress
        limit = ctx.chat_max_per_hour
        if not suppressed and over_rate_limit(ctx.recent.get(key, ()), now=ctx.now, limit=limit):
            suppressed = f"rate limit: {limit} notices to this channel in the last hour"
        specs.append(
            NoticeSpec(
                kind=kind,
                recipient=key,
                language=channel.language,
                # Mail's cause for the kind, then the channel: once per event and channel.
                cause=f"{event.cause}:{kind}:{key}"[:255],
                status=event.status,
                due=event.due,
                due_at=event.due_at,
                suppressed=suppressed,
                channel=channel.name,
                rate_key=key,
            )
        )
    return specs


def webhook_events_of(event: Event, ctx: NoticeContext) -> tuple[str, ...]:
    """The webhook events ``event`` is, in the order their rows are written."""
    if event.kind == NEW_TICKET:
        return (webhook_events.CREATED, *((webhook_events.ASSIGNED,) if event.assignee else ()))
    if event.kind == STATUS_CHANGE and event.old_status and event.old_status != event.status:
        closed = (webhook_events.CLOSED,) if ctx.status_closed else ()
        return (webhook_events.STATUS_CHANGED, *closed)
    if event.kind == ASSIGNMENT and event.assignee:
        return (webhook_events.ASSIGNED,)
    if event.kind in (CUSTOMER_REPLY, AGENT_REPLY):
        return (webhook_events.REPLIED,)
    if event.kind == SLA_DUE and event.due in sla.BREACH_KINDS:
        return (webhook_events.SLA_BREACHED,)
    return ()


def webhook_specs(event: Event, ctx: NoticeContext) -> list[NoticeSpec]:
    """One row per (webhook event, subscribed webhook); never suppressed."""
    if not ctx.webhooks or not event.ticket_number:
        return []
    specs: list[NoticeSpec] = []
    for name in webhook_events_of(event, ctx):
        detail = _detail(name, event, ctx)
        for hook in ctx.webhooks:
            if not webhook_events.subscribed(hook.events, name):
                continue
            specs.append(
                NoticeSpec(
                    kind=WEBHOOK,
                    recipient=webhook_key(hook.name),
                    language=ctx.default_language,
                    cause=f"{event.cause}:webhook:{hook.name}:{name}"[:255],
                    channel=hook.name,
                    rate_key=webhook_key(hook.name),
                    detail=detail,
                )
            )
    return specs


def _detail(name: str, event: Event, ctx: NoticeContext) -> dict[str, Any]:
    """A webhook row's detail: the event, the ticket's number and its system fields,
    and what the event itself adds; ids and words of the system only."""
    facts = ctx.ticket_facts
    out: dict[str, Any] = {
        "event": name,
        "ticket": event.ticket_number,
        "status": event.status or facts.get("status", ""),
        "priority": facts.get("priority", ""),
        "type": facts.get("type", ""),
        "team": facts.get("team", ""),
        "assignee_id": facts.get("assignee_id"),
    }
    if name in (webhook_events.STATUS_CHANGED, webhook_events.CLOSED):
        out["old_status"] = event.old_status
    if name == webhook_events.REPLIED:
        out["by"] = "agent" if event.kind == AGENT_REPLY else "customer"
        out["automatic"] = event.kind == CUSTOMER_REPLY and ctx.automatic
    if name == webhook_events.SLA_BREACHED:
        out["due"] = event.due
        out["due_at"] = event.due_at
    return out
