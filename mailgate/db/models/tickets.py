"""Tickets and what makes them: inbound mail, teams, agents, customer accounts, messages,
attachments, links, the thread index, history, the outbox and SLA events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailgate.core.notices import rate_key as mailbox_key
from mailgate.core.states import InboundState, NoticeState

# Integer ids that are BIGINT on PostgreSQL and the rowid alias on SQLite.
from mailgate.db.models.base import Base, BigId


class InboundMessage(Base):
    """One message as it arrived, raw, before and after processing (the intake ledger)."""

    __tablename__ = "inbound_messages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    # Where it came from, unique per source: IMAP mailbox:uidvalidity:uid, a file path, ...
    source_ref: Mapped[str | None] = mapped_column(String(512), unique=True)
    envelope_from: Mapped[str] = mapped_column(String(998), default="")
    envelope_to: Mapped[list[Any]] = mapped_column(default=list)
    client_address: Mapped[str] = mapped_column(String(64), default="")
    helo: Mapped[str] = mapped_column(String(255), default="")
    received_at: Mapped[datetime]
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int]
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # received -> processed | failed | quarantined
    state: Mapped[str] = mapped_column(String(16), default=InboundState.RECEIVED.value, index=True)
    outcome: Mapped[str] = mapped_column(String(32), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    processed_at: Mapped[datetime | None]
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    defects: Mapped[list[Any]] = mapped_column(default=list)
    # When a failed attempt may be retried; the reconciler measures staleness from it.
    next_attempt_at: Mapped[datetime | None]
    # Who let a message refused by intake.policy open a ticket anyway (empty: nobody).
    # The server default is migration 0004's, which filled the rows already there: a
    # fresh database built from these models must match a migrated one exactly.
    accepted_by: Mapped[str] = mapped_column(String(320), default="", server_default="")


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    assignment: Mapped[str] = mapped_column(String(32), default="round_robin")
    cap: Mapped[int] = mapped_column(default=0)
    # Last agent handed a ticket by round robin; updated under a row lock.
    rr_last_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    away: Mapped[bool] = mapped_column(Boolean, default=False)
    teams: Mapped[list[Any]] = mapped_column(default=list)
    # Raised when the password changes or the agent is made inactive: a portal session
    # made under another value is no longer signed in (directory.end_agent_sessions).
    # Migration 0009 added it with this server default for the agents already there.
    credential_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    domains: Mapped[list[Any]] = mapped_column(default=list)
    addresses: Mapped[list[Any]] = mapped_column(default=list)
    admins: Mapped[list[Any]] = mapped_column(default=list)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    language: Mapped[str] = mapped_column(String(16), default="")


class CustomerKey(Base):
    """One address, admin address or domain an account lists, to find the account by it
    with an index (migration 0024). Written by the database's triggers on ``customers``
    alone, whichever path writes an account (``db/customer_keys.py``)."""

    __tablename__ = "customer_keys"
    # "address", "admin" or "domain"; the value as the account lists it.
    value: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Ticket(Base):
    __tablename__ = "tickets"
    # Migration 0010 (issue 23, a million tickets): the agent queue reads each status
    # newest first (``queries.queue``), alone or with its team or assignee filter, from
    # one of these three without a sort; the two dates (index=True below) bound the
    # period queries of `mailgate stats`.
    # Migration 0021: a customer's tickets newest first, by requester or by account
    # (db/ticket_scope.py).
    __table_args__ = (
        Index("ix_tickets_status_id", "status", "id"),
        Index("ix_tickets_team_id_status_id", "team_id", "status", "id"),
        Index("ix_tickets_assignee_id_status_id", "assignee_id", "status", "id"),
        Index("ix_tickets_requester_id", "requester", "id"),
        Index("ix_tickets_customer_id_id", "customer_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The public reference; equal to id, kept apart so it can be renumbered on import.
    number: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    requester: Mapped[str] = mapped_column(String(320))
    requester_name: Mapped[str] = mapped_column(String(255), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    language: Mapped[str] = mapped_column(String(16), default="")
    tags: Mapped[list[Any]] = mapped_column(default=list)
    # Migration 0011: `mailgate stats` reads the tickets opened in its period by range.
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    first_response_at: Mapped[datetime | None] = mapped_column(index=True)
    closed_at: Mapped[datetime | None] = mapped_column(index=True)
    follow_up_at: Mapped[datetime | None]
    action_required_at: Mapped[datetime | None]
    # How many ticket_helpers rows it has (tickets.involvement keeps it): a customer's
    # reply reads the helpers to tell only when there are some, and spends no
    # statement on the many tickets without (issue 23's statement budget).
    helpers_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # Likewise for ticket_suppliers (tickets.suppliers keeps it): only mail to a ticket
    # with suppliers costs the statement that asks whether its sender is one of them.
    suppliers_count: Mapped[int] = mapped_column(default=0, server_default="0")

    messages: Mapped[list[TicketMessage]] = relationship(
        back_populates="ticket", order_by="TicketMessage.id"
    )
    participants: Mapped[list[Participant]] = relationship(order_by="Participant.id")


class Participant(Base):
    """An address taking part in a ticket: requester, Cc'd customer, or agent."""

    __tablename__ = "ticket_participants"
    # Migration 0021: a customer's tickets newest first (db/ticket_scope.py).
    __table_args__ = (
        UniqueConstraint("ticket_id", "email"),
        Index("ix_ticket_participants_email_ticket_id", "email", "ticket_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default="cc")


class TicketLink(Base):
    __tablename__ = "ticket_links"
    __table_args__ = (UniqueConstraint("ticket_id", "other_ticket_id", "kind"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    other_ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(32), default="related")


class TicketMessage(Base):
    __tablename__ = "ticket_messages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # One inbound message makes at most one ticket message (invariant 2).
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"), unique=True)
    # inbound | outbound | note, and the supplier side (issue 22), which only agents see:
    # supplier (a supplier's mail) | to_supplier (an agent's message to a supplier).
    direction: Mapped[str] = mapped_column(String(16))
    author_email: Mapped[str] = mapped_column(String(320), default="")
    author_name: Mapped[str] = mapped_column(String(255), default="")
    to: Mapped[list[Any]] = mapped_column(default=list)
    cc: Mapped[list[Any]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    # The new text of a reply without quotes and signature; body_text keeps everything.
    # Migration 0003 added it last, with a server default for the rows already there;
    # sort_order and server_default make a fresh create_all build the same table.
    body_reply: Mapped[str] = mapped_column(Text, default="", server_default="", sort_order=1)
    message_id: Mapped[str] = mapped_column(String(998), default="")
    # Fingerprint of the body bytes: with message_id, what makes a re-delivery a duplicate.
    content_sha256: Mapped[str] = mapped_column(String(64), default="")
    in_reply_to: Mapped[list[Any]] = mapped_column(default=list)
    references: Mapped[list[Any]] = mapped_column(default=list)
    thread_method: Mapped[str] = mapped_column(String(16), default="new")
    after_close: Mapped[bool] = mapped_column(Boolean, default=False)
    screening: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    attachments: Mapped[list[StoredAttachment]] = relationship(order_by="StoredAttachment.id")


class StoredAttachment(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_message_id: Mapped[int] = mapped_column(ForeignKey("ticket_messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    content_id: Mapped[str] = mapped_column(String(255), default="")
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    # None when over limits.max_attachment_bytes; the raw message still holds it.
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    omitted: Mapped[str] = mapped_column(String(255), default="")


class MessageIdEntry(Base):
    """Every Message-ID mailgate has seen or sent for a ticket: the threading index."""

    __tablename__ = "message_ids"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    ticket_message_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_messages.id"))
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"))
    direction: Mapped[str] = mapped_column(String(16), default="inbound")


class HistoryEvent(Base):
    __tablename__ = "history_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64), default="")
    old: Mapped[str] = mapped_column(Text, default="")
    new: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Notice(Base):
    """The outbox: one content-free notice to send, written with the event that caused it."""

    __tablename__ = "notices"
    __table_args__ = (
        Index("ix_notices_state_next", "state", "next_attempt_at"),
        # Migration 0010: what one address (or one mailbox) was sent in a recent window,
        # read as a range of these indexes rather than every notice the address ever got.
        Index("ix_notices_recipient_created_at", "recipient", "created_at"),
        Index("ix_notices_rate_key_created_at", "rate_key", "created_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # None for a notice about a message that opened no ticket (kind intake_refused).
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # The inbound message that caused it, so the worker can send it right after processing.
    # Migration 0004 added it last, with a named foreign key; sort_order and the name make
    # a fresh create_all build the same table.
    inbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_messages.id", name="fk_notices_inbound_id"), index=True, sort_order=1
    )
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(16), default="en")
    # pending -> sent | failed | bounced | suppressed
    state: Mapped[str] = mapped_column(String(16), default=NoticeState.PENDING.value)
    # What caused it, unique so reprocessing an event never writes a second notice.
    cause: Mapped[str] = mapped_column(String(255), unique=True)
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    in_reply_to: Mapped[str] = mapped_column(String(998), default="")
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    # System vocabulary only (e.g. the new status), for the template: never customer text.
    # The server default is migration 0003's, which filled the rows already there.
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    # The mailbox the hourly limit counts (``core.notices.rate_key``: case and plus-detail
    # dropped), kept beside the recipient so the limit's read is one index range per
    # mailbox: a LIKE on the recipient for the plus spellings used no index. Filled from
    # the recipient whoever inserts the row. Migration 0010 added it last (so sort_order)
    # and filled the rows already there; the server default is that migration's.
    rate_key: Mapped[str] = mapped_column(
        String(320),
        default=lambda ctx: mailbox_key(ctx.get_current_parameters()["recipient"]),
        server_default="",
        sort_order=2,
    )
    # Issue 24: the chat channel or [[webhooks]] entry the row goes to, by its name in the
    # configuration (whose environment holds the URL: never stored); "" for mail.
    # Migration 0019 added it last (so sort_order), with its server default.
    channel: Mapped[str] = mapped_column(String(64), default="", server_default="", sort_order=3)


class SlaEvent(Base):
    """A due event that fired: an SLA target passed or a ticket date reached.

    Unique per (ticket, kind, due time), so however many workers check, each event
    fires once; a new date or target is a new due time, hence a new event."""

    __tablename__ = "sla_events"
    __table_args__ = (UniqueConstraint("ticket_id", "kind", "due_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    # first_response | resolution (breaches) | follow_up | action_required (dates)
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]
    fired_at: Mapped[datetime] = mapped_column(index=True)
    breached: Mapped[bool] = mapped_column(Boolean, default=False)
