"""Which notices an event produces (DESIGN.md §6), and which of them must stay unsent.

Pure: an ``Event`` and a ``NoticeContext`` of plain values in, frozen ``NoticeSpec``s
out. A suppressed notice is still returned, with its reason, so the outbox records
why nothing was sent (invariant 5 is visible, not silent). Mail first, then the same
kinds to the ticket's chat channels and one row per subscribed webhook (issue 24:
``core.chat_notices``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mailgate.core.channel_settings import WebhookSetting
from mailgate.core.chat import ChatChannel
from mailgate.core.directory import base_address, is_support_address

ACKNOWLEDGEMENT = "acknowledgement"
ASSIGNED = "assigned"
CUSTOMER_REPLIED = "customer_replied"
AGENT_REPLIED = "agent_replied"
STATUS_CHANGED = "status_changed"
CLOSED_TICKET = "closed_ticket"
# To the assignee, when an SLA target passes or a ticket date is reached (mailgate/sla.py).
REMINDER = "reminder"
# Suppliers (issue 22): to the assignee and helpers when an attached supplier's mail came
# in; to each address of a supplier an agent wrote to (mailgate/tickets/suppliers.py).
SUPPLIER_REPLIED = "supplier_replied"
SUPPLIER_MESSAGE = "supplier_message"
KINDS = (
    ACKNOWLEDGEMENT, ASSIGNED, CUSTOMER_REPLIED, AGENT_REPLIED, STATUS_CHANGED, CLOSED_TICKET,
    REMINDER, SUPPLIER_REPLIED, SUPPLIER_MESSAGE,
)  # fmt: skip
# The answer to a sender intake.policy refuses (mailgate/tickets/refusal.py): about no ticket.
INTAKE_REFUSED = "intake_refused"
# The portal's one-time sign-in link (mailgate/tickets/sign_in.py), also about no ticket.
SIGN_IN_LINK = "sign_in_link"
# To a to-do's assignee, once, when it is overdue (mailgate/tickets/todo_reminders.py):
# about its ticket, or about no ticket for a standalone to-do. Never names the to-do.
TODO_REMINDER = "todo_reminder"
ALL_KINDS = (*KINDS, INTAKE_REFUSED, SIGN_IN_LINK, TODO_REMINDER)
# The kind of a [[webhooks]] row (issue 24): one ticket event to one integration. Not a
# mail kind (no template): its ``detail`` is the payload's system fields.
WEBHOOK = "webhook"

# Notices that go to the customer side (language of the customer), the rest to agents.
CUSTOMER_KINDS = frozenset(
    {ACKNOWLEDGEMENT, AGENT_REPLIED, STATUS_CHANGED, CLOSED_TICKET, INTAKE_REFUSED, SIGN_IN_LINK}
)
# Notices to a supplier's addresses, in the supplier's language.
SUPPLIER_KINDS = frozenset({SUPPLIER_MESSAGE})
# Direct answers to an inbound message's sender: RFC 3834 §5 calls them auto-replied.
ANSWER_KINDS = frozenset({ACKNOWLEDGEMENT, CLOSED_TICKET, INTAKE_REFUSED})
# Caused by inbound mail, so an outside party can make them repeat: rate-limited. Reminders
# too: a tight target or a bulk date change could otherwise bury an agent's inbox.
RATE_LIMITED_KINDS = frozenset(
    {
        ACKNOWLEDGEMENT, CLOSED_TICKET, CUSTOMER_REPLIED, SUPPLIER_REPLIED, REMINDER,
        INTAKE_REFUSED, TODO_REMINDER,
    }
)  # fmt: skip

# Events
NEW_TICKET = "new_ticket"
CUSTOMER_REPLY = "customer_reply"
MESSAGE_TO_CLOSED = "message_to_closed"
AGENT_REPLY = "agent_reply"
STATUS_CHANGE = "status_change"
ASSIGNMENT = "assignment"
SLA_DUE = "sla_due"
INTAKE_REFUSAL = "intake_refusal"  # about no ticket: the sender may not open one
SIGN_IN_REQUEST = "sign_in_request"  # about no ticket: a customer asked for a link
TODO_DUE = "todo_due"  # a to-do passed its due date; ``assignee`` is the to-do's
SUPPLIER_REPLY = "supplier_reply"  # an attached supplier's mail; ``sender`` wrote it
MESSAGE_TO_SUPPLIER = "message_to_supplier"  # an agent wrote to ``supplier_addresses``
INBOUND_EVENTS = frozenset(
    {NEW_TICKET, CUSTOMER_REPLY, MESSAGE_TO_CLOSED, INTAKE_REFUSAL, SUPPLIER_REPLY}
)

RATE_WINDOW = timedelta(hours=1)
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class Event:
    """Something that happened to a ticket. ``cause`` is unique per event: reprocessing
    the same event yields the same causes, which the outbox's unique column refuses."""

    kind: str
    cause: str
    ticket_number: int  # 0 for the events about no ticket
    requester: str
    sender: str = ""  # who wrote the inbound message, for inbound events
    assignee: str = ""  # the assigned agent's address, if any
    # Agents helping on the ticket besides its owner, told of customer replies too
    # (``tickets.notify_helpers``): filled in for CUSTOMER_REPLY only.
    helpers: tuple[str, ...] = ()
    # MESSAGE_TO_SUPPLIER: the addresses of the supplier written to.
    supplier_addresses: tuple[str, ...] = ()
    in_reply_to: str = ""  # the Message-ID of the message that caused it, so notices thread
    in_reply_to_author: str = ""  # who wrote that message: only their notices echo it
    status: str = ""  # the status after the event, for status changes and agent replies
    due: str = ""  # for SLA_DUE: which target or date (sla.KINDS)
    due_at: str = ""  # for SLA_DUE and TODO_DUE: when it fell due, ISO 8601
    # STATUS_CHANGE raised by the change itself (tickets.notify.tell_webhooks): the status
    # it left. Only such an event is a ``ticket.status_changed`` for webhooks: the
    # requester's status notice is also sent where nothing changed (a merge).
    old_status: str = ""
    # A fact no person or channel is told of (another notice names it, or none does):
    # only webhooks get rows, e.g. the status an agent's reply sets.
    webhooks_only: bool = False


@dataclass(frozen=True)
class NoticeContext:
    """Values the decision needs: the inbound screening, languages, and recent counts."""

    now: datetime
    automatic: bool = False  # the inbound message was a bounce, auto-reply or our own
    answerable: bool = True  # screening allows answering the inbound sender
    screening_reason: str = ""
    customer_language: str = ""
    ticket_language: str = ""
    supplier_language: str = ""  # for SUPPLIER_KINDS: the supplier's
    default_language: str = "en"
    max_per_hour: int = 5
    # Times of notices already written to each mailbox (``rate_key``) in the last hour,
    # not suppressed ones.
    recent: Mapping[str, Sequence[datetime]] = field(default_factory=dict)
    own_addresses: Collection[str] = ()
    # A reason the caller already has to send nothing (e.g. told within the day).
    suppress: str = ""
    # Issue 24: the ticket's chat channels (its account's, then its teams'), the limit
    # per channel (``recent`` holds their counts under ``chat_key``), the webhooks, and
    # the ticket's system fields for their rows; whether ``event.status`` closes it.
    chat: Sequence[ChatChannel] = ()
    chat_max_per_hour: int = 60
    webhooks: Sequence[WebhookSetting] = ()
    ticket_facts: Mapping[str, Any] = field(default_factory=dict)
    status_closed: bool = False


@dataclass(frozen=True)
class NoticeSpec:
    kind: str
    recipient: str
    language: str
    cause: str
    in_reply_to: str = ""
    status: str = ""
    due: str = ""
    due_at: str = ""
    suppressed: str = ""  # why it must not be sent; empty when it should go
    # Chat and webhook rows (issue 24): the channel's or webhook's name, the key their
    # hourly count is kept under, and (webhooks) the row's whole detail.
    channel: str = ""
    rate_key: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict, hash=False)


def over_rate_limit(sent_at: Sequence[datetime], *, now: datetime, limit: int) -> bool:
    """True when ``limit`` or more notices went to one address in the hour before ``now``."""
    since = now - RATE_WINDOW
    return sum(1 for at in sent_at if since < at <= now) >= limit


def choose_language(*candidates: str, default: str) -> str:
    """The first well-formed candidate (primary subtag of RFC 5646: ``fr-CA`` → ``fr``),
    else ``default``. Whether templates exist for it is the renderer's fallback."""
    for value in candidates:
        primary = value.strip().lower().replace("_", "-").split("-")[0]
        if _LANGUAGE.match(primary):
            return primary
    return default


def _candidates(event: Event) -> list[tuple[str, str]]:
    """(kind, recipient) pairs an event asks for, before any suppression."""
    if event.kind == NEW_TICKET:
        out = [(ACKNOWLEDGEMENT, event.requester)]
        if event.assignee:
            out.append((ASSIGNED, event.assignee))
        return out
    if event.kind == CUSTOMER_REPLY:
        # The owner and the helpers; nobody is told about their own message.
        agents = dict.fromkeys(a for a in (event.assignee, *event.helpers) if a)
        return [(CUSTOMER_REPLIED, a) for a in agents if a != event.sender]
    if event.kind == SUPPLIER_REPLY:
        # Like a customer's reply, to the owner and the helpers; the supplier is not
        # told of their own mail.
        agents = dict.fromkeys(a for a in (event.assignee, *event.helpers) if a)
        return [(SUPPLIER_REPLIED, a) for a in agents if a != event.sender]
    if event.kind == MESSAGE_TO_SUPPLIER:
        return [(SUPPLIER_MESSAGE, a) for a in dict.fromkeys(event.supplier_addresses)]
    if event.kind == MESSAGE_TO_CLOSED:
        # Invariant 4: the sender learns the ticket is closed; no agent is alerted.
        return [(CLOSED_TICKET, event.sender)]
    if event.kind == AGENT_REPLY:
        return [(AGENT_REPLIED, event.requester)]
    if event.kind == STATUS_CHANGE:
        return [(STATUS_CHANGED, event.requester)]
    if event.kind == ASSIGNMENT:
        # ``sender``: who assigned it; nobody is told what they did themselves.
        told = event.assignee and event.assignee != event.sender
        return [(ASSIGNED, event.assignee)] if told else []
    if event.kind == SLA_DUE:
        # Unassigned: nobody to remind; the history and the queue show it.
        return [(REMINDER, event.assignee)] if event.assignee else []
    if event.kind == INTAKE_REFUSAL:
        return [(INTAKE_REFUSED, event.sender)]
    if event.kind == SIGN_IN_REQUEST:
        return [(SIGN_IN_LINK, event.requester)]
    if event.kind == TODO_DUE:
        return [(TODO_REMINDER, event.assignee)] if event.assignee else []
    raise ValueError(f"unknown event kind {event.kind!r}")


def unusable_address(address: str) -> str:
    """Why no mail may go to ``address``, or ``""``: a control character (C0, C1, DEL),
    a Unicode line or paragraph separator or any white space cannot be in a mailbox
    (RFC 5321 §4.1.2) and would break the headers of whatever is composed for it."""
    for ch in address:
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            return f"the address has a control character (U+{ord(ch):04X}); no automatic mail"
    return ""


def rate_key(address: str) -> str:
    """The mailbox an hourly limit counts: case and plus-detail (RFC 5233) are one mailbox,
    so ``Victim+1@`` and ``victim+2@`` share ``victim@``'s allowance."""
    return base_address(address.strip().lower())


def rate_keys(addresses: Iterable[str]) -> set[str]:
    """The mailboxes (``rate_key``) of those of ``addresses`` that are mail addresses."""
    return {rate_key(a) for a in addresses if "@" in a}


def _suppression(
    kind: str, recipient: str, event: Event, ctx: NoticeContext, counts: dict[str, int]
) -> str:
    unusable = unusable_address(recipient)
    if unusable:
        return unusable
    if event.kind in INBOUND_EVENTS and ctx.automatic:
        return f"caused by automatic mail ({ctx.screening_reason})"
    if kind in ANSWER_KINDS and not ctx.answerable:
        return f"sender must not be answered ({ctx.screening_reason})"
    if is_support_address(recipient, ctx.own_addresses):
        return "recipient is one of mailgate's own addresses"
    if ctx.suppress:
        return ctx.suppress
    if kind in RATE_LIMITED_KINDS:
        key = rate_key(recipient)
        already = list(ctx.recent.get(key, ())) + [ctx.now] * counts.get(key, 0)
        if over_rate_limit(already, now=ctx.now, limit=ctx.max_per_hour):
            return f"rate limit: {ctx.max_per_hour} notices to this address in the last hour"
    return ""


def _wrote_it(recipient: str, event: Event) -> bool:
    author = event.in_reply_to_author.strip().lower()
    return bool(author) and author == recipient


def recipients(event: Event) -> tuple[str, ...]:
    """Every address ``event`` may write to, before any suppression (lower case)."""
    return tuple(dict.fromkeys(who.strip().lower() for _, who in _candidates(event) if who))


def decide(event: Event, ctx: NoticeContext) -> tuple[NoticeSpec, ...]:
    """The notices ``event`` produces, each either to send or suppressed with a reason:
    mail, then the ticket's chat channels, then its webhooks."""
    # Imported here: chat_notices builds on this module's Event and NoticeSpec.
    from mailgate.core import chat_notices

    mail = () if event.webhooks_only else _mail(event, ctx)
    return (*mail, *chat_notices.chat_specs(event, ctx), *chat_notices.webhook_specs(event, ctx))


def _mail(event: Event, ctx: NoticeContext) -> tuple[NoticeSpec, ...]:
    specs: list[NoticeSpec] = []
    counts: dict[str, int] = {}
    kinds_seen: set[str] = set()
    for kind, who in _candidates(event):
        recipient = who.strip().lower()
        if "@" not in recipient:
            continue
        suppressed = _suppression(kind, recipient, event, ctx, counts)
        if not suppressed:
            counts[rate_key(recipient)] = counts.get(rate_key(recipient), 0) + 1
        if kind in CUSTOMER_KINDS:
            language = choose_language(
                ctx.customer_language, ctx.ticket_language, default=ctx.default_language
            )
        elif kind in SUPPLIER_KINDS:
            language = choose_language(ctx.supplier_language, default=ctx.default_language)
        else:
            language = ctx.default_language
        specs.append(
            NoticeSpec(
                kind=kind,
                recipient=recipient,
                language=language,
                # One notice of a kind per event, named by the kind; a second of the
                # same kind (a helper's "customer replied") also by its recipient.
                cause=_cause(event.cause, kind, recipient if kind in kinds_seen else "")[:255],
                # Only the author's own Message-ID is echoed (so their client threads
                # it): another sender's id, and its text, are not theirs to be shown.
                in_reply_to=event.in_reply_to if _wrote_it(recipient, event) else "",
                status=event.status,
                due=event.due,
                due_at=event.due_at,
                suppressed=suppressed,
            )
        )
        kinds_seen.add(kind)
    return tuple(specs)


def _cause(cause: str, kind: str, recipient: str) -> str:
    return f"{cause}:{kind}:{recipient}" if recipient else f"{cause}:{kind}"


def chat_key(channel: str) -> str:
    """The recipient and the rate key of a chat notice to ``channel``."""
    return f"chat:{channel}"


def webhook_key(name: str) -> str:
    """The recipient and the rate key (never limited) of a row for webhook ``name``."""
    return f"webhook:{name}"
