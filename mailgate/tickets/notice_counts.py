"""What the notice rate limit counts: the notices each mailbox and chat channel was
sent within the window, read in one statement, and the per-address lock that makes
counting and then writing atomic (``notify.notify`` decides with them)."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from mailgate.core import notices
from mailgate.core.states import NoticeState
from mailgate.db.models import Notice


def serialize_per_address(session: Session, addresses: Iterable[str]) -> None:
    """Make the count-then-write of the rate limit atomic per address: a second
    transaction notifying the same address waits until this one commits, then counts
    what it wrote. PostgreSQL: a transaction-scoped advisory lock per address (in sorted
    order, so two transactions cannot deadlock). SQLite: its one write lock, which the
    caller already holds."""
    wanted = sorted({a for a in addresses if a})
    if not wanted or session.get_bind().dialect.name != "postgresql":
        # SQLite: every caller has written (and so holds the one write lock) before it
        # notifies: the ticket's lock, a new ticket, a sign-in token, the inbound row.
        return
    # One statement for all of them, taken in the order of the lock keys themselves (the
    # target list is evaluated after the sort), so two transactions always take shared
    # keys in the same order. The key holds the schema: advisory locks are per database,
    # and two mailgates (or two test schemas) in one database count their own mailboxes.
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended("
            "current_schema() || '/mailgate.notices/' || a, 0) AS k "
            "FROM unnest(CAST(:keys AS text[])) AS a) AS wanted ORDER BY k"
        ),
        {"keys": wanted},
    )


def recent_notices(
    session: Session, addresses: Iterable[str], *, now: datetime, channels: Iterable[str] = ()
) -> dict[str, list[datetime]]:
    """When each mailbox (``notices.rate_key``: every spelling of an address) and each
    chat channel (under ``notices.chat_key``) was sent notices within the rate-limit
    window; suppressed notices do not count (they were never sent)."""
    return recent_and_written(session, addresses, now=now, channels=channels)[0]


def recent_and_written(
    session: Session,
    addresses: Iterable[str],
    *,
    now: datetime,
    channels: Iterable[str] = (),
    causes: Collection[str] = (),
) -> tuple[dict[str, list[datetime]], set[str]]:
    """``recent_notices``, and which of ``causes`` name a notice already written, in one
    statement (issue 23's budget: the outbox would otherwise ask a second time)."""
    chat_keys = {notices.chat_key(c) for c in channels}
    keys = sorted({notices.rate_key(a) for a in addresses if "@" in a} | chat_keys)
    if not keys and not causes:
        return {}, set()
    values: dict[str, Any] = {"keys": keys, "causes": list(causes)}
    values["since"] = now - notices.RATE_WINDOW
    rows = session.execute(_recent_statement(bool(keys), bool(causes)), values).all()
    out: dict[str, list[datetime]] = {}
    written: set[str] = set()
    wanted = set(causes)
    for recipient, key, at, recent, cause in rows:
        if recent:
            mailbox = key if key in chat_keys else notices.rate_key(recipient)
            out.setdefault(mailbox, []).append(_aware(at, now))
        if cause in wanted:
            written.add(cause)
    return out, written


@functools.lru_cache(maxsize=4)
def _recent_statement(by_key: bool, by_cause: bool) -> Select[Any]:
    """``recent_and_written``'s statement, built once per shape and given its values
    (``keys``, ``since``, ``causes``) as parameters: built for each message, it cost a
    bulk import a tenth of a millisecond per new ticket."""
    keys: BindParameter[Any] = bindparam("keys", expanding=True)
    causes: BindParameter[Any] = bindparam("causes", expanding=True)
    # Every spelling of a mailbox (case, plus-detail) has the same rate_key, stored with
    # the row: one range of ix_notices_rate_key_created_at per mailbox, bounded to the
    # window. A LIKE on the recipient for the plus spellings used no index and read every
    # notice the address was ever sent (issue 23). The causes are a second index (the
    # unique one), ORed in: the database reads each range and merges them.
    in_window = and_(
        Notice.rate_key.in_(keys),
        Notice.created_at > bindparam("since", type_=Notice.created_at.type),
        Notice.state != NoticeState.SUPPRESSED,
    )
    # Which condition a row met is computed by the database, as the WHERE does.
    flag: ColumnElement[int]
    if by_key and by_cause:
        flag = case((in_window, 1), else_=0)
        where = or_(in_window, Notice.cause.in_(causes))
    elif by_key:
        flag, where = literal_column("1"), in_window
    else:
        flag, where = literal_column("0"), Notice.cause.in_(causes)
    columns = (Notice.recipient, Notice.rate_key, Notice.created_at, flag, Notice.cause)
    return select(*columns).where(where)


def _aware(at: datetime, like: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were written in the clock's zone.
    return at if at.tzinfo is not None or like.tzinfo is None else at.replace(tzinfo=like.tzinfo)
