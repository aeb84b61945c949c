"""Counts of mail the receivers refused before it became an inbound row.

A refused message leaves no row to count at scrape time, so each receiver counts
its refusals in memory and adds them to the ``rejections`` table (one row per
source, reason and UTC day) every few seconds and when it stops. A flood of
refusals costs one small upsert per flush; accepted mail never waits for it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailgate.db.models import Rejection
from mailgate.db.store import Store

log = logging.getLogger(__name__)

# The fixed set of reasons, documented in the README (Metrics and health).
REASONS = frozenset(
    {
        "relay_denied",  # RCPT to an address that is not ours (550 5.1.1)
        "too_many_recipients",  # over smtp.max_recipients (452 4.5.3)
        "too_big",  # over smtp.max_message_bytes (552 5.3.4; ingest, IMAP)
        "line_too_long",  # a line over RFC 5321's limit in DATA (500)
        "not_an_email",  # empty, or no header fields (554 5.6.0; ingest, IMAP)
        "syntax",  # a malformed MAIL FROM or RCPT TO address or parameter (501, 553, 555)
        "auth_required",  # MAIL without AUTH when credentials are configured (530 5.7.0)
        "auth_failed",  # wrong AUTH credentials (535)
        "auth_throttled",  # too many failed AUTH: per connection or client address (421)
        "idle_commands",  # over smtp.max_idle_commands (421 4.7.0, closed)
        "session_too_long",  # over smtp.max_session_seconds (421 4.7.0, closed)
        "connection_limit",  # over smtp.max_connections (421 at connect)
        "client_limit",  # over smtp.max_connections_per_ip (421 at connect)
        "shutting_down",  # a connection while the receiver drains (421 at connect)
        "timeout",  # the client went quiet in the middle of a transaction
        "storage_unavailable",  # the database could not store it (451 4.3.0)
        "internal_error",  # anything else that went wrong (451 4.3.0)
    }
)
# How often a long-running receiver writes its counts.
FLUSH_SECONDS = 5.0


class RejectionCounter:
    """One process's refusals not yet written, for one source (smtp, imap, ingest).

    ``add`` is called on the receiver's hot path (the event loop): a lock and a dict
    increment, never I/O. ``flush`` runs on any thread."""

    def __init__(self, source: str, now: Callable[[], datetime]) -> None:
        self.source = source
        self.now = now
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, date]] = Counter()

    def add(self, reason: str, n: int = 1) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        key = (reason, self.now().date())
        with self._lock:
            self._counts[key] += n

    @property
    def unwritten(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def flush(self, store: Store) -> int:
        """Add the counts to the database; how many were written. On failure the counts
        are kept for the next flush and the error is raised."""
        with self._lock:
            taken, self._counts = self._counts, Counter()
        if not taken:
            return 0
        try:
            with store.transaction() as session:
                upsert(session, self.source, taken)
        except BaseException:
            with self._lock:
                self._counts.update(taken)
            raise
        return sum(taken.values())

    def flush_quietly(self, store: Store) -> None:
        """``flush``, logging instead of raising: for periodic and shutdown flushes."""
        try:
            self.flush(store)
        except Exception as exc:  # noqa: BLE001 - metrics must never stop a receiver
            log.warning(
                "%s: could not write %d rejection count(s), kept for later: %s",
                self.source,
                self.unwritten,
                exc,
            )


def upsert(session: Session, source: str, counts: Counter[tuple[str, date]]) -> None:
    """``count = count + n`` per (source, reason, day), inserting rows as needed."""
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = [
        {"source": source, "reason": reason, "day": day, "count": n}
        for (reason, day), n in sorted(counts.items())
    ]
    statement = insert(Rejection).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["source", "reason", "day"],
        set_={"count": Rejection.count + statement.excluded["count"]},
    )
    session.execute(statement)


def record(store: Store, source: str, reason: str, now: Callable[[], datetime]) -> None:
    """Count one refusal and write it at once: for receivers that refuse rarely (an
    IMAP message is refused once, then the cursor moves past it)."""
    counter = RejectionCounter(source, now)
    counter.add(reason)
    counter.flush_quietly(store)


def totals(session: Session, since: date | None = None) -> dict[tuple[str, str], int]:
    """Counts written, summed over days (from ``since`` on, else all):
    {(source, reason): count}."""
    query = select(Rejection.source, Rejection.reason, func.sum(Rejection.count)).group_by(
        Rejection.source, Rejection.reason
    )
    if since is not None:
        query = query.where(Rejection.day >= since)
    return {(source, reason): int(n) for source, reason, n in session.execute(query)}


def summary(session: Session, since: date) -> dict[str, Any]:
    """``total``, ``by_source`` and ``by_reason`` from day ``since`` (UTC) on."""
    by_source: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    for (source, reason), n in totals(session, since).items():
        by_source[source] += n
        by_reason[reason] += n
    return {
        "total": sum(by_source.values()),
        "by_source": dict(sorted(by_source.items())),
        "by_reason": dict(sorted(by_reason.items())),
    }
