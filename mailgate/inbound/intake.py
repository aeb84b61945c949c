"""The single durable-accept path: raw bytes become a committed ``inbound_messages`` row.

Every receiver calls ``accept`` and acknowledges (SMTP 250, IMAP move, exit 0)
only after it returns: that is invariant 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mailgate.errors import PermanentFailure
from mailgate.header_repair import header_lines_found
from mailgate.models import InboundMessage
from mailgate.store import Store


@dataclass(frozen=True)
class Envelope:
    """What the transport knew besides the bytes: SMTP envelope, client, HELO."""

    mail_from: str = ""
    rcpt_to: tuple[str, ...] = ()
    client_address: str = ""
    helo: str = ""


@dataclass(frozen=True)
class Accepted:
    inbound_id: int
    duplicate: bool
    sha256: str = field(default="")


def check_is_email(raw: bytes, *, max_bytes: int) -> None:
    """Refuse what can never become a ticket: empty input, over the size limit, or
    bytes with no recognisable header field near the top. Anything with headers is
    accepted, however broken; defects are recorded when it is parsed."""
    if not raw.strip():
        raise PermanentFailure("empty message")
    if len(raw) > max_bytes:
        raise PermanentFailure(
            f"message is {len(raw)} bytes, over smtp.max_message_bytes ({max_bytes})"
        )
    if header_lines_found(raw) == 0:
        raise PermanentFailure("not an email: no header fields (From:, Subject:, ...) at the top")


def accept(
    store: Store,
    raw: bytes,
    *,
    source: str,
    envelope: Envelope,
    max_bytes: int,
    now: Callable[[], datetime],
    source_ref: str | None = None,
) -> Accepted:
    """Commit ``raw`` and return its row id; the same bytes (or ``source_ref``) twice
    return the first row with ``duplicate=True``. Raises ``PermanentFailure`` for
    input that is not an email, ``TemporaryFailure`` when the database is down."""
    check_is_email(raw, max_bytes=max_bytes)
    digest = hashlib.sha256(raw).hexdigest()
    existing = _find(store, digest, source_ref)
    if existing is not None:
        return Accepted(existing, duplicate=True, sha256=digest)
    row = InboundMessage(
        source=source,
        source_ref=source_ref,
        envelope_from=envelope.mail_from,
        envelope_to=list(envelope.rcpt_to),
        client_address=envelope.client_address,
        helo=envelope.helo,
        received_at=now(),
        sha256=digest,
        size=len(raw),
        raw=raw,
    )
    try:
        with store.transaction() as session:
            session.add(row)
            session.flush()
            inbound_id = row.id
    except IntegrityError:
        # Another receiver committed the same message between our look-up and insert.
        found = _find(store, digest, source_ref)
        if found is None:
            raise
        return Accepted(found, duplicate=True, sha256=digest)
    return Accepted(inbound_id, duplicate=False, sha256=digest)


def _find(store: Store, digest: str, source_ref: str | None) -> int | None:
    with store.transaction() as session:
        condition = InboundMessage.sha256 == digest
        if source_ref is not None:
            condition = condition | (InboundMessage.source_ref == source_ref)
        return session.scalar(select(InboundMessage.id).where(condition).limit(1))
