"""Bearer tokens for integrations: shown once when made, stored as SHA-256 only.

A token made with an agent is that agent's: whoever holds it acts as the agent, with
staff rights (opening tickets for customers, choosing team and assignee), and the
history names the agent. A plain token acts as the integration (``api:<name>``)."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core.errors import InvalidValue, NotFound
from mailgate.db.models import Agent, ApiToken

PREFIX = "mgt_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add(session: Session, name: str, at: datetime, agent: str | None = None) -> str:
    """Make a token for integration ``name`` (or for ``agent``, who then acts through
    it) and return it; it is never shown again."""
    if not _NAME.match(name):
        raise InvalidValue(
            "token names are letters, digits, '.', '_' and '-', got %(name)r", name=name
        )
    existing = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if existing is not None:
        raise InvalidValue("a token named %(name)r exists (revoke it first)", name=name)
    agent_id = None
    if agent is not None:
        row = session.scalar(select(Agent).where(Agent.email == agent.strip().lower()))
        if row is None or not row.active:
            raise InvalidValue("no active agent %(agent)r", agent=agent)
        agent_id = row.id
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=_hash(token), created_at=at, agent_id=agent_id))
    return token


def listing(session: Session) -> list[dict[str, str | None]]:
    """Every token's name, agent and dates; never the token."""
    agents: dict[int, str] = {
        id_: email for id_, email in session.execute(select(Agent.id, Agent.email))
    }
    return [
        {
            "name": row.name,
            "agent": agents.get(row.agent_id) if row.agent_id is not None else None,
            "created_at": row.created_at.isoformat(),
            "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        }
        for row in session.scalars(select(ApiToken).order_by(ApiToken.name))
    ]


def revoke(session: Session, name: str, at: datetime) -> None:
    """Stop token ``name`` from working; it is kept, revoked, for the record."""
    row = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if row is None:
        raise NotFound(f"no API token named {name!r}")
    if row.revoked_at is None:
        row.revoked_at = at


def check(session: Session, token: str, at: datetime) -> tuple[ApiToken, Agent | None] | None:
    """The live token row for a presented bearer token and its agent, else None. An
    agent's token stops working while the agent is deactivated."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
    if row is None or row.revoked_at is not None:
        return None
    agent = session.get(Agent, row.agent_id) if row.agent_id is not None else None
    if agent is not None and not agent.active:
        return None
    row.last_used_at = at
    return row, agent
