"""Merging one ticket into another (issue 20): the conversation moves, the merged ticket
closes for good and points to where it went.

``merge`` moves the merged ticket's messages (their attachments hang off them), its
participants and every Message-ID the thread index knows for it (those of its mail and
of the notices sent about it) to the target. The merged ticket is closed by the close
every close is (``changes.close``), gets a "merged into" link (the target a "merged
from" one, the system's own kinds: config cannot remove them, ``tickets link`` cannot
make them), and both requesters get the content-free status notice. Mail that names the
merged ticket later, by its thread headers, its signed reply token or its subject tag,
lands on the target (``db.thread_index``).

Refused: a ticket into itself, a closed (or already merged) ticket, into a closed (or
merged) one, and across customer accounts. Zammad refuses only a merge into itself or
into a merged ticket, and RT merges whatever the status (the merged ticket's watchers
join the target, as participants do here). Here closing is final (invariant 4): a merge
would empty a closed ticket or add to one, so both must be open. And since everyone
taking part in the target then sees every message, two accounts' tickets stay apart (a
link relates them without that).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, case, delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update

from mailgate.core import notices
from mailgate.core import statuses as status_machine
from mailgate.core.errors import ActionRefused, NotFound
from mailgate.core.settings import MERGED_FROM, MERGED_INTO, Settings
from mailgate.db.models import (
    Customer,
    MessageIdEntry,
    Participant,
    Ticket,
    TicketLink,
    TicketMessage,
)
from mailgate.db.thread_index import merged_into
from mailgate.tickets import involvement, members, suppliers
from mailgate.tickets.actors import Actor
from mailgate.tickets.changes import close
from mailgate.tickets.notify import tell_requester
from mailgate.tickets.records import closed_refusal, history, lock_ticket


@dataclass(frozen=True)
class Merged:
    """What a merge did: the two tickets (both still locked) and what moved."""

    source: Ticket
    target: Ticket
    messages: int
    participants: int
    message_ids: int


def merge(
    session: Session,
    *,
    settings: Settings,
    number: int,
    into: int,
    actor: Actor,
    at: datetime,
) -> Merged:
    """Merge ticket ``number`` into ticket ``into``: its conversation moves there, and it
    is closed with a "merged into" link. One history event on each ticket."""
    if number == into:
        # Refused like the other impossible merges (not a malformed value: the API's
        # schema cannot tell two numbers apart, so no 400 for a request it allows).
        raise ActionRefused("ticket #%(number)s cannot be merged into itself", number=number)
    source, target = _lock_both(session, number, into)
    _refuse(session, source, target, settings)
    # Closed by the close every close is (SLA clocks end, closed_at set, the status
    # notice), before the messages move: the notice threads to the requester's own newest
    # message on it.
    assert source.number is not None
    close(session, settings=settings, number=source.number, actor=actor, at=at)
    session.flush()  # the notice's Message-ID is in the index now, and moves with the rest
    moved_messages = _count(
        session,
        update(TicketMessage)
        .where(TicketMessage.ticket_id == source.id)
        .values(ticket_id=target.id),
    )
    moved_ids = _count(
        session,
        update(MessageIdEntry)
        .where(MessageIdEntry.ticket_id == source.id)
        .values(ticket_id=target.id),
    )
    moved_people = _move_participants(session, source, target)
    joined = _join_members(session, source, target)
    session.add_all(
        [
            TicketLink(ticket_id=source.id, other_ticket_id=target.id, kind=MERGED_INTO),
            TicketLink(ticket_id=target.id, other_ticket_id=source.id, kind=MERGED_FROM),
        ]
    )
    counts = {
        "messages": str(moved_messages),
        "participants": str(moved_people),
        "message_ids": str(moved_ids),
        **{kind: ",".join(names) for kind, names in joined.items() if names},
    }
    history(session, source, at, actor.label, "merged_into", new=str(target.number), detail=counts)
    received = history(
        session,
        target,
        at,
        actor.label,
        "merged_from",
        new=str(source.number),
        detail=counts,
        flush=True,  # the notice is named after it
    )
    target.updated_at = at
    # The target's requester learns the conversation goes on there (its status is the
    # one it had: the notice says which).
    tell_requester(
        session, target, notices.STATUS_CHANGE, f"merge:{received.id}", settings=settings, now=at
    )
    session.flush()
    # Bulk statements bypass the loaded collections: read them again when next asked.
    for ticket in (source, target):
        session.expire(ticket, ["messages", "participants"])
    return Merged(source, target, moved_messages, moved_people, moved_ids)


def _lock_both(session: Session, number: int, into: int) -> tuple[Ticket, Ticket]:
    """Both tickets, locked lower id first: two merges of the same pair, in either
    direction, then wait for each other instead of deadlocking."""
    ids = dict(
        session.execute(
            select(Ticket.number, Ticket.id).where(Ticket.number.in_((number, into)))
        ).all()
    )
    for wanted in (number, into):
        if wanted not in ids:
            raise NotFound(f"no ticket #{wanted}")
    locked = {
        ticket_id: lock_ticket(session, ticket_id=ticket_id) for ticket_id in sorted(ids.values())
    }
    return locked[ids[number]], locked[ids[into]]


def _refuse(session: Session, source: Ticket, target: Ticket, settings: Settings) -> None:
    """Say why this merge cannot be made, if it cannot."""
    for ticket in (source, target):
        went_to = merged_into(session, ticket)
        if went_to is not None:
            now_on = session.scalar(select(Ticket.number).where(Ticket.id == went_to))
            if ticket is source:
                raise ActionRefused(
                    "ticket #%(number)s was merged into #%(now_on)s",
                    number=ticket.number,
                    now_on=now_on,
                )
            raise ActionRefused(
                "ticket #%(number)s was merged into #%(now_on)s; merge into #%(now_on)s instead",
                number=ticket.number,
                now_on=now_on,
            )
    if status_machine.is_closed(source.status, settings.tickets):
        raise closed_refusal(source)
    if status_machine.is_closed(target.status, settings.tickets):
        raise ActionRefused(
            "ticket #%(number)s is %(status)s: a ticket is merged into an open "
            "one (a closed ticket never changes)",
            number=target.number,
            status=target.status,
        )
    if source.customer_id != target.customer_id:
        raise _different_accounts(session, source, target)


def _different_accounts(session: Session, source: Ticket, target: Ticket) -> ActionRefused:
    """The refusal to merge tickets of different customer accounts, naming them; one
    whole sentence for each case (one side may have no account; never both)."""
    names = [_account(session, t.customer_id) for t in (source, target)]
    numbers = {"number": source.number, "other": target.number}
    if names[0] is None:
        return ActionRefused(
            "ticket #%(number)s (no account) and #%(other)s (account %(other_account)s) "
            "belong to different customer accounts: merged, each side would see the "
            "other's messages. Link them instead.",
            **numbers,
            other_account=names[1],
        )
    if names[1] is None:
        return ActionRefused(
            "ticket #%(number)s (account %(account)s) and #%(other)s (no account) "
            "belong to different customer accounts: merged, each side would see the "
            "other's messages. Link them instead.",
            **numbers,
            account=names[0],
        )
    return ActionRefused(
        "ticket #%(number)s (account %(account)s) and #%(other)s (account %(other_account)s) "
        "belong to different customer accounts: merged, each side would see the other's "
        "messages. Link them instead.",
        **numbers,
        account=names[0],
        other_account=names[1],
    )


def _account(session: Session, customer_id: int | None) -> str | None:
    """The name of customer account ``customer_id``, or None for none."""
    customer = session.get(Customer, customer_id) if customer_id is not None else None
    return customer.name if customer is not None else None


def _join_members(session: Session, source: Ticket, target: Ticket) -> dict[str, list[str]]:
    """The source's helpers, departments and suppliers join the target's (its owner is
    not made a helper, nor its team a department): a supplier's answer to the merged
    ticket's mail must still be known as the supplier's on the target. The names added,
    by kind; the source keeps its own rows, as a record."""
    added: dict[str, list[str]] = {}
    for kind, skip in (
        (involvement.HELPERS, target.assignee_id),
        (involvement.DEPARTMENTS, target.team_id),
        (suppliers.SUPPLIERS, None),
    ):
        there = members.current(session, kind, target.id)
        new = {
            name: id_
            for name, id_ in members.current(session, kind, source.id).items()
            if name not in there and id_ != skip
        }
        session.add_all(
            kind.link(ticket_id=target.id, **{kind.link_column: id_}) for id_ in new.values()
        )
        added[kind.action] = list(new)
        if kind.count:
            setattr(target, kind.count, len(there) + len(new))
    return added


def _move_participants(session: Session, source: Ticket, target: Ticket) -> int:
    """Move the source's participants to the target, each address once; the source's
    requester becomes a Cc there (the target keeps its own requester). Returns how many
    addresses the target gained."""
    on_target = set(
        session.scalars(select(Participant.email).where(Participant.ticket_id == target.id))
    )
    on_target.add(target.requester)
    on_source = dict(
        session.execute(
            select(Participant.email, Participant.id).where(Participant.ticket_id == source.id)
        ).all()
    )
    twice = [pid for email, pid in on_source.items() if email in on_target]
    if twice:
        session.execute(delete(Participant).where(Participant.id.in_(twice)))
    moved = _count(
        session,
        update(Participant)
        .where(Participant.ticket_id == source.id)
        .values(
            ticket_id=target.id,
            role=case((Participant.role == "requester", "cc"), else_=Participant.role),
        ),
    )
    if source.requester not in on_target and source.requester not in on_source:
        # Their replies must keep threading (they take part in the target now).
        session.add(Participant(ticket_id=target.id, email=source.requester, role="cc"))
        moved += 1
    return moved


def _count(session: Session, statement: Update) -> int:
    """Run a bulk statement; the number of rows it changed."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount
