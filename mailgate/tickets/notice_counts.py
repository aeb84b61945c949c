"""What the notice rate limit counts: the notices each mailbox and chat channel was
sent within the window, read in one statement, and the per-address lock that makes
counting and then writing atomic (``notify.notify`` decides with them)."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
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
    keys = sorted(notices.rate_keys(addresses) | chat_keys)
    if not keys and not causes:
        return {}, set()
    since = now - notices.RATE_WINDOW
    group: GroupNotices | None = session.info.get(GROUP_NOTICES)
    rows: Iterable[tuple[str, str, datetime, bool, str]]
    if group is not None and group.answers(keys, causes, since):
        rows = group.rows_for(keys, since)
    else:
        values: dict[str, Any] = {"keys": keys, "causes": list(causes), "since": since}
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


# Where ``read_for_group`` keeps what it read, in the session's ``info``.
GROUP_NOTICES = "mailgate.group_notices"


@dataclass
class GroupNotices:
    """The notices a group of mail messages' counts and causes can name, read at once
    (``read_for_group``) and kept current with those the group writes (``added``):
    every notice to ``keys`` created after ``since``, and every notice whose cause is
    one of the group's messages' (``inbound:<id>:``)."""

    since: datetime
    keys: set[str]
    prefixes: set[str]
    # (recipient, rate_key, created_at, counted, cause) per notice
    rows: list[tuple[str, str, datetime, bool, str]] = field(default_factory=list)

    def answers(self, keys: Collection[str], causes: Collection[str], since: datetime) -> bool:
        """Whether what was read holds every notice the question can name."""
        return (
            since >= self.since
            and all(key in self.keys for key in keys)
            and all(_cause_prefix(cause) in self.prefixes for cause in causes)
        )

    def rows_for(
        self, keys: Collection[str], since: datetime
    ) -> list[tuple[str, str, datetime, bool, str]]:
        """The rows as ``_recent_statement`` gives them: counted when the notice is to
        one of ``keys``, after ``since`` and not suppressed."""
        wanted = set(keys)
        return [
            (recipient, key, at, counted and key in wanted and _aware(at, since) > since, cause)
            for recipient, key, at, counted, cause in self.rows
        ]


def read_for_group(
    session: Session, addresses: Iterable[str], inbound_ids: Iterable[int], *, now: datetime
) -> None:
    """Read, in one statement, the notices the rate limit and the outbox will ask about
    for a group of mail messages: those to their senders within the window, and those
    their own causes name; ``recent_and_written`` then answers from them. Only where
    nothing but this transaction can write a notice until it commits: SQLite, whose one
    write lock the group holds (the count is still taken before the write, exactly).
    One read per new ticket was a twelfth of a bulk import's write side."""
    keys = notices.rate_keys(addresses)
    prefixes = {f"inbound:{inbound_id}:" for inbound_id in inbound_ids}
    since = now - notices.RATE_WINDOW
    # A cause's own range of the unique index (``;`` follows ``:``) per message.
    by_cause = [and_(Notice.cause >= p, Notice.cause < p[:-1] + ";") for p in sorted(prefixes)]
    by_key = and_(Notice.rate_key.in_(sorted(keys)), Notice.created_at > since)
    columns = (Notice.recipient, Notice.rate_key, Notice.created_at, Notice.state, Notice.cause)
    found = session.execute(select(*columns).where(or_(by_key, *by_cause))).all()
    group = GroupNotices(since, keys, prefixes)
    group.rows = [(r, k, at, s != NoticeState.SUPPRESSED, c) for r, k, at, s, c in found]
    session.info[GROUP_NOTICES] = group


def added(session: Session, rows: Iterable[Notice]) -> None:
    """Notices written in this transaction (flushed): a group's later counts see them."""
    group: GroupNotices | None = session.info.get(GROUP_NOTICES)
    if group is not None:
        group.rows += [
            (
                n.recipient,
                n.rate_key or notices.rate_key(n.recipient),
                n.created_at,
                n.state != NoticeState.SUPPRESSED,
                n.cause,
            )
            for n in rows
        ]


def _cause_prefix(cause: str) -> str:
    """``inbound:<id>:`` of a mail message's notice's cause; "" for any other cause."""
    kind, _, rest = cause.partition(":")
    number, colon, _ = rest.partition(":")
    return f"{kind}:{number}:" if kind == "inbound" and colon else ""


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
