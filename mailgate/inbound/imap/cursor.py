"""Where each mailbox's folder was left off: its UIDVALIDITY and the last UID handled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mailgate.db.models import ImapCursor
from mailgate.db.store import Store


@dataclass(frozen=True)
class Cursor:
    uidvalidity: int
    last_uid: int


def load(store: Store, mailbox: str) -> Cursor | None:
    """The saved cursor of ``mailbox``, or None before its first pass."""
    with store.transaction() as session:
        row = session.get(ImapCursor, mailbox)
        return None if row is None else Cursor(row.uidvalidity, row.last_uid)


def save(store: Store, mailbox: str, cursor: Cursor, *, now: Callable[[], datetime]) -> None:
    """Record that every UID up to ``cursor.last_uid`` under ``cursor.uidvalidity`` is handled.

    Only the lease holder writes a mailbox's cursor, so a plain upsert is enough.
    """
    with store.transaction() as session:
        row = session.get(ImapCursor, mailbox)
        if row is None:
            row = ImapCursor(mailbox=mailbox)
            session.add(row)
        row.uidvalidity, row.last_uid, row.updated_at = cursor.uidvalidity, cursor.last_uid, now()
