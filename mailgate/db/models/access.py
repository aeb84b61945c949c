"""Who may act and what runs: IMAP leases and cursors, portal sessions, sign-in tokens,
API tokens, passwords, rate-limit hits, canned responses and refused-mail counts."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

# Integer ids that are BIGINT on PostgreSQL and the rowid alias on SQLite.
from mailgate.db.models.base import Base, BigId


class Lease(Base):
    """Who may run a singleton job (one mailbox's IMAP poller) and until when."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime]


class ImapCursor(Base):
    """How far a mailbox's folder has been read: RFC 3501 §2.3.1.1 UIDs are only
    meaningful together with the folder's UIDVALIDITY, so both are kept."""

    __tablename__ = "imap_cursors"
    mailbox: Mapped[str] = mapped_column(String(128), primary_key=True)
    # UIDs and UIDVALIDITY are unsigned 32-bit: BIGINT on PostgreSQL.
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


# --- The portal and API (mailgate/web) ---


class WebSession(Base):
    """A signed-in browser. The cookie holds a random id; only its SHA-256 is stored."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # customer | agent
    email: Mapped[str] = mapped_column(String(320))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # The agent's credential_generation at sign-in; the session ends when it moves on.
    # Migration 0009 added it with this server default for the sessions already there.
    credential_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SignInToken(Base):
    """A customer's one-time sign-in link: single use, short-lived, stored as a hash."""

    __tablename__ = "sign_in_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The link is HMAC(security.secret, id + salt): the notice renderer can rebuild it,
    # a copy of the database alone cannot.
    salt: Mapped[str] = mapped_column(String(64))
    next_path: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token for one integration; shown once, stored as a hash. With an agent,
    whoever holds it acts as that agent (staff rights, the agent's name in the history)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", name="fk_api_tokens_agent_id")
    )


class AgentPassword(Base):
    """An agent's portal password as an argon2 hash."""

    __tablename__ = "agent_passwords"
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime]


class RateLimitHit(Base):
    """One counted attempt in a rate-limit bucket (sign-in requests, failed passwords).

    In the database so every web process shares the count."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_hits_bucket_at", "bucket", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bucket: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime]


class CannedResponse(Base):
    """A reply text agents answer with by name (``tickets reply --response NAME``)."""

    __tablename__ = "canned_responses"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # A template with only the placeholders response_text.PLACEHOLDERS names.
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(320), default="")


class Rejection(Base):
    """How often a receiver refused mail that never became an inbound row, per day.

    Receivers count in memory and add their counts here every few seconds (an upsert),
    so a flood of refusals costs one write per flush, not one per refusal."""

    __tablename__ = "rejections"
    __table_args__ = (UniqueConstraint("source", "reason", "day"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
