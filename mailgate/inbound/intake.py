"""The single durable-accept path: raw bytes become a committed ``inbound_messages`` row.

Every receiver calls ``accept`` and acknowledges (SMTP 250, IMAP move, exit 0)
only after it returns: that is invariant 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailgate.core.errors import PermanentFailure
from mailgate.core.header_repair import header_lines_found
from mailgate.db.models import InboundMessage
from mailgate.db.store import Store


@dataclass(frozen=True)
class Envelope:
    """What the transport knew besides the bytes: SMTP envelope, client, HELO."""

    mail_from: str = ""
    rcpt_to: tuple[str, ...] = ()
    client_address: str = ""
    helo: str = ""


class NotMail(PermanentFailure):
    """Input refused before storing; ``reason`` names it for the rejection counts
    (``too_big`` or ``not_an_email``, see ``mailgate.db.rejection_counts.REASONS``)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def refusal_reason(exc: PermanentFailure) -> str:
    """The rejection reason for a refusal from ``accept``."""
    return exc.reason if isinstance(exc, NotMail) else "not_an_email"


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
        raise NotMail("empty message", "not_an_email")
    if len(raw) > max_bytes:
        raise NotMail(
            f"message is {len(raw)} bytes, over smtp.max_message_bytes ({max_bytes})", "too_big"
        )
    if header_lines_found(raw) == 0:
        raise NotMail(
            "not an email: no header fields (From:, Subject:, ...) at the top", "not_an_email"
        )


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


# Core table for the batch path: cheaper per statement than ORM-enabled statements.
_INBOUND = cast(Table, InboundMessage.__table__)


@dataclass(frozen=True)
class Incoming:
    """One message waiting for ``accept_many``."""

    raw: bytes
    envelope: Envelope
    source_ref: str | None = None


def accept_many(
    store: Store,
    items: Sequence[Incoming],
    *,
    source: str,
    max_bytes: int,
    now: Callable[[], datetime],
) -> list[Accepted | PermanentFailure]:
    """``accept`` for several messages in one transaction: a group commit, so they share
    one disk flush. Returns, per item, its ``Accepted`` or the ``PermanentFailure`` that
    refused it, only once the transaction is committed (invariant 1). Any other failure
    raises and commits none of them (``TemporaryFailure`` when the database is down)."""
    results: list[Accepted | PermanentFailure | None] = [None] * len(items)
    digests: dict[int, str] = {}
    for i, item in enumerate(items):
        try:
            check_is_email(item.raw, max_bytes=max_bytes)
        except PermanentFailure as exc:
            results[i] = exc
            continue
        digests[i] = hashlib.sha256(item.raw).hexdigest()
    owner: dict[int, int] = {}  # item → the item whose new row it is (itself, or a twin's)
    ids: dict[str, int] = {}
    try:
        # Look-up and insert share one transaction, two statements whatever the batch
        # size: each statement costs SQLAlchemy overhead and a GIL hand-over.
        with store.transaction() as session:
            known = _known(session, set(digests.values()), {items[i].source_ref for i in digests})
            first: dict[str, int] = {}  # digest or source_ref earlier in this batch → its item
            for i, digest in digests.items():
                item = items[i]
                keys = (digest, item.source_ref) if item.source_ref else (digest,)
                found = next((known[k] for k in keys if k in known), None)
                if found is not None:
                    results[i] = Accepted(found, duplicate=True, sha256=digest)
                    continue
                owner[i] = next((first[k] for k in keys if k in first), i)
                first.update(dict.fromkeys(keys, owner[i]))
            new = [i for i in owner if owner[i] == i]
            if new:
                at = now()
                # One multi-row INSERT ... RETURNING; ids are matched back by digest, so
                # the order of the returned rows does not matter.
                inserted = session.execute(
                    insert(_INBOUND).returning(_INBOUND.c.sha256, _INBOUND.c.id),
                    [_values(items[i], source=source, sha256=digests[i], at=at) for i in new],
                )
                ids.update(inserted.all())
    except IntegrityError:
        # Another receiver committed one of these since the look-up: settle them singly.
        for i in owner:
            item = items[i]
            results[i] = accept(
                store,
                item.raw,
                source=source,
                envelope=item.envelope,
                max_bytes=max_bytes,
                now=now,
                source_ref=item.source_ref,
            )
        return [r for r in results if r is not None]
    for i, j in owner.items():
        results[i] = Accepted(ids[digests[j]], duplicate=i != j, sha256=digests[i])
    return [r for r in results if r is not None]


def _values(item: Incoming, *, source: str, sha256: str, at: datetime) -> dict[str, Any]:
    return {
        "source": source,
        "source_ref": item.source_ref,
        "envelope_from": item.envelope.mail_from,
        "envelope_to": list(item.envelope.rcpt_to),
        "client_address": item.envelope.client_address,
        "helo": item.envelope.helo,
        "received_at": at,
        "sha256": sha256,
        "size": len(item.raw),
        "raw": item.raw,
    }


def _known(session: Session, digests: set[str], refs: set[str | None]) -> dict[str, int]:
    """Stored ids by sha256 and by source_ref (the two share no values: hex vs refs)."""
    refs.discard(None)
    if not digests and not refs:
        return {}
    condition: ColumnElement[bool] = _INBOUND.c.sha256.in_(digests)
    if refs:
        condition = condition | _INBOUND.c.source_ref.in_(refs)
    found = session.execute(
        select(_INBOUND.c.id, _INBOUND.c.sha256, _INBOUND.c.source_ref).where(condition)
    ).all()
    out: dict[str, int] = {}
    for row_id, digest, ref in found:
        out[digest] = row_id
        if ref is not None:
            out[ref] = row_id
    return out
