"""Customers' one-time sign-in links: single use, short-lived, stored as a hash.

The token in the link is ``<id>-<HMAC(security.secret, id + salt)>``. The
database keeps its SHA-256 and the salt, so the notice renderer, which has the
secret, can rebuild the link from the notice (``link_for_notice``), while a
copy of the database alone signs nobody in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core import notices
from mailgate.core.settings import Settings
from mailgate.db.directory import customer_of
from mailgate.db.models import Notice, SignInToken
from mailgate.tickets.notify import notify

_TOKEN = re.compile(r"^(\d{1,18})-([A-Za-z0-9_-]{43})$")
CAUSE_PREFIX = "sign_in:"


def _sign(secret: str, token_id: int, salt: str) -> str:
    digest = hmac.new(secret.encode(), f"signin:{token_id}:{salt}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii").rstrip("=")


def token_text(secret: str, row: SignInToken) -> str:
    return f"{row.id}-{_sign(secret, row.id, row.salt)}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link(settings: Settings, row: SignInToken) -> str:
    """The URL the sign-in mail carries."""
    return f"{settings.web.base_url}/sign-in/{token_text(settings.security.secret, row)}"


def link_for_notice(session: Session, settings: Settings, notice: Notice) -> str | None:
    """The sign-in URL a ``sign_in_link`` notice must show, for the notice renderer."""
    if notice.kind != notices.SIGN_IN_LINK or not notice.cause.startswith(CAUSE_PREFIX):
        return None
    # The cause is "sign_in:<token id>:<kind>" (the decision appends the notice's kind).
    token_id = notice.cause.removeprefix(CAUSE_PREFIX).partition(":")[0]
    if not token_id.isdigit():
        return None
    row = session.get(SignInToken, int(token_id))
    return link(settings, row) if row is not None else None


def safe_next(path: str | None) -> str:
    """A local path to return to after sign-in; anything else (another site) is dropped."""
    if not path or not path.startswith("/") or path.startswith(("//", "/\\")):
        return ""
    if any(ch in path for ch in "\r\n\\") or len(path) > 500:
        return ""
    return path


def send_link(
    session: Session, settings: Settings, email: str, at: datetime, next_path: str = ""
) -> SignInToken:
    """Mint a token for ``email`` and queue the content-free mail carrying its link."""
    row = SignInToken(
        email=email.lower(),
        # The real hash needs the row id; a unique placeholder until the flush gives one.
        token_hash=f"pending-{secrets.token_hex(16)}",
        salt=secrets.token_urlsafe(24),
        next_path=safe_next(next_path),
        created_at=at,
        expires_at=at + timedelta(minutes=settings.web.sign_in_link_minutes),
    )
    session.add(row)
    session.flush()
    row.token_hash = _hash(token_text(settings.security.secret, row))
    account = customer_of(session, row.email)
    event = notices.Event(
        kind=notices.SIGN_IN_REQUEST,
        cause=f"{CAUSE_PREFIX}{row.id}",
        ticket_number=0,
        requester=row.email,
    )
    notify(session, event, settings=settings, now=at, language=account.language if account else "")
    return row


def peek(session: Session, secret: str, token: str, at: datetime) -> SignInToken | None:
    """The unused, unexpired token row for ``token``, without using it."""
    if not _TOKEN.match(token):
        return None
    row = session.scalar(select(SignInToken).where(SignInToken.token_hash == _hash(token)))
    if row is None or row.used_at is not None or row.expires_at <= at:
        return None
    # The hash matched; the signature check makes a forged row in the database useless.
    if not hmac.compare_digest(token_text(secret, row), token):
        return None
    return row


def use(session: Session, secret: str, token: str, at: datetime) -> SignInToken | None:
    """Spend ``token``: the row it names, now marked used, or None if it is not valid."""
    row = session.scalar(
        select(SignInToken).where(SignInToken.token_hash == _hash(token)).with_for_update()
    )
    if row is None or peek(session, secret, token, at) is None:
        return None
    row.used_at = at
    session.flush()
    return row
