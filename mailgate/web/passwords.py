"""Agents' portal passwords: argon2id hashes, never the password itself."""

from __future__ import annotations

from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core.errors import InvalidValue, NotFound
from mailgate.db.directory import end_agent_sessions
from mailgate.db.models import Agent, AgentPassword

MIN_LENGTH = 10
_hasher = PasswordHasher()
# Verified when an address has no password, so a wrong address takes as long as a wrong
# password and the timing does not tell which agents exist.
_DUMMY = _hasher.hash("not-a-password-of-anyone")


def set_password(session: Session, email: str, password: str, at: datetime) -> Agent:
    """Store a new password hash for agent ``email``; their portal sessions end with the old one."""
    if len(password) < MIN_LENGTH:
        raise InvalidValue("a password needs at least %(min)s characters", min=MIN_LENGTH)
    agent = session.scalar(select(Agent).where(Agent.email == email.strip().lower()))
    if agent is None:
        raise NotFound(f"no agent {email!r}")
    row = session.get(AgentPassword, agent.id)
    if row is None:
        row = AgentPassword(agent_id=agent.id, password_hash="", updated_at=at)
        session.add(row)
    row.password_hash = _hasher.hash(password)
    row.updated_at = at
    end_agent_sessions(session, agent)
    return agent


def check_password(session: Session, email: str, password: str, at: datetime) -> Agent | None:
    """The active agent whose password this is, else None."""
    agent = session.scalar(select(Agent).where(Agent.email == email.strip().lower()))
    row = session.get(AgentPassword, agent.id) if agent is not None else None
    stored = row.password_hash if row is not None else _DUMMY
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if agent is None or row is None or not agent.active:
        return None
    if _hasher.check_needs_rehash(stored):
        row.password_hash, row.updated_at = _hasher.hash(password), at
    return agent
