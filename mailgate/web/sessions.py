"""Browser sessions: a random id in the cookie, its SHA-256 in ``web_sessions``."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailgate.db.models import WebSession

_SID = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_sid() -> str:
    """A fresh session id: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def well_formed(value: str | None) -> bool:
    return bool(value) and _SID.match(value or "") is not None


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def start(
    session: Session,
    *,
    kind: str,
    email: str,
    agent_id: int | None,
    at: datetime,
    hours: int,
    credential_generation: int = 0,
) -> str:
    """Record a signed-in session and return its new id for the cookie. Expired sessions
    are swept here, the one place sessions are written. An agent's session carries the
    ``credential_generation`` read with the password it was checked against."""
    session.execute(delete(WebSession).where(WebSession.expires_at <= at))
    sid = new_sid()
    session.add(
        WebSession(
            token_hash=digest(sid),
            kind=kind,
            email=email.lower(),
            agent_id=agent_id,
            credential_generation=credential_generation,
            created_at=at,
            expires_at=at + timedelta(hours=hours),
        )
    )
    return sid


def find(session: Session, sid: str, at: datetime) -> WebSession | None:
    """The live session with id ``sid``, else None."""
    if not well_formed(sid):
        return None
    row = session.scalar(select(WebSession).where(WebSession.token_hash == digest(sid)))
    if row is None or row.expires_at <= at:
        return None
    return row


def end(session: Session, sid: str) -> None:
    """Sign out: the session id stops working at once."""
    if well_formed(sid):
        session.execute(delete(WebSession).where(WebSession.token_hash == digest(sid)))
