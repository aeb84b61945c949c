"""The outbox rows themselves: private to the write side (an import contract says so).

Everything else reaches the outbox through ``tickets.notify``, which decides first
(screening, rate limit, own addresses). A row is written in the same transaction as the
event that caused it, so a notice exists if and only if its event committed; its
Message-ID is minted once, here, so every delivery attempt sends the same one.

A chat or webhook row (issue 24) names its ``channel``; its Message-ID is only the
row's unique delivery id: no reply can come to it, so it is not indexed to the ticket.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core.notices import WEBHOOK, NoticeSpec
from mailgate.core.settings import Settings
from mailgate.core.states import PENDING_NOTICES, NoticeState
from mailgate.db.models import MessageIdEntry, Notice, Ticket
from mailgate.threading.tokens import mint_message_id
from mailgate.tickets import notice_counts


def write(
    session: Session,
    specs: Iterable[NoticeSpec],
    *,
    ticket: Ticket | None,
    settings: Settings,
    now: datetime,
    inbound_id: int | None = None,
    detail: Mapping[str, str] | None = None,
    checked: tuple[Collection[str], set[str]] | None = None,
) -> list[Notice]:
    """Insert one row per spec not already written (``cause`` is unique: reprocessing an
    event writes nothing twice); a ticket's mail notice has its Message-ID indexed as
    outbound, so a reply to it finds the ticket.

    ``checked``: causes the caller already looked up, and those of them it found
    written; only causes outside them are asked (``notify`` reads them with the rate
    limit's counts, in one statement)."""
    domain = settings.outbound.from_address.rpartition("@")[2] or "localhost"
    wanted = list(specs)
    if not wanted:
        return []
    asked, found = checked if checked is not None else ((), set())
    unknown = [s.cause for s in wanted if s.cause not in asked]
    written = set(found)
    if unknown:
        written |= set(session.scalars(select(Notice.cause).where(Notice.cause.in_(unknown))))
    rows: list[Notice] = []
    for spec in wanted:
        if spec.cause in written:
            continue
        if ticket is not None and not spec.channel:
            assert ticket.number is not None
            message_id = mint_message_id(ticket.number, settings.security.secret, domain)
        else:
            # About no ticket, or not mail: a random Message-ID, so a reply to it
            # threads nowhere.
            message_id = f"mg.notice.{secrets.token_hex(12)}@{domain}"
        row = Notice(
            ticket_id=ticket.id if ticket is not None else None,
            inbound_id=inbound_id,
            kind=spec.kind,
            recipient=spec.recipient,
            language=spec.language,
            state=NoticeState.SUPPRESSED if spec.suppressed else NoticeState.PENDING,
            cause=spec.cause,
            message_id=message_id,
            in_reply_to=spec.in_reply_to,
            created_at=now,
            attempts=0,
            next_attempt_at=None if spec.suppressed else now,
            last_error=spec.suppressed,
            # A webhook row's detail is its payload's fields, decided whole.
            detail=dict(spec.detail)
            if spec.kind == WEBHOOK
            else {**_system_words(spec), **(detail or {})},
            channel=spec.channel,
        )
        if spec.rate_key:
            row.rate_key = spec.rate_key  # else the model's default: the mailbox
        session.add(row)
        rows.append(row)
    if rows:
        session.flush()  # one INSERT for all of them; their ids name the index entries
        notice_counts.added(session, rows)  # a bulk import's later counts see them
        # For the store's after-commit hooks: a broker is told only once they exist.
        session.info.setdefault(PENDING_NOTICES, []).extend(
            r.id for r in rows if r.state == NoticeState.PENDING
        )
    if ticket is not None:
        session.add_all(
            MessageIdEntry(
                message_id=row.message_id,
                ticket_id=ticket.id,
                notice_id=row.id,
                direction="outbound",
            )
            for row in rows
            if not row.channel
        )
    return rows


def _system_words(spec: NoticeSpec) -> dict[str, str]:
    """The system vocabulary a template may show: a status, an SLA kind, a due time."""
    values = {"status": spec.status, "due": spec.due, "due_at": spec.due_at}
    return {key: value for key, value in values.items() if value}
