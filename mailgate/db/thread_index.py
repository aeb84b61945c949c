"""The thread resolver's lookups (``threading.resolver.ThreadLookup``) over a session."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import getaddresses

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core.settings import MERGED_INTO
from mailgate.db.models import (
    Customer,
    MessageIdEntry,
    Notice,
    Supplier,
    Ticket,
    TicketLink,
    TicketMessage,
    TicketSupplier,
)
from mailgate.threading.resolver import TicketRef


class ThreadIndex:
    """``ThreadLookup`` over a session.

    ``known`` holds index entries the caller already read (Message-ID → entry), so the
    ids it covers cost no second query; ``load`` reads a ticket by id, e.g. taking its row
    lock at once, so that a ticket found here is the one the caller then changes."""

    def __init__(
        self,
        session: Session,
        *,
        known: Mapping[str, MessageIdEntry] | None = None,
        absent: Collection[str] = (),
        load: Callable[[int], Ticket | None] | None = None,
    ) -> None:
        """``absent``: Message-IDs the caller already found in no entry."""
        self.session = session
        self.known = dict(known or {})
        self.absent = set(absent)
        self.load = load or (lambda ticket_id: session.get(Ticket, ticket_id))
        self.loaded: dict[int, Ticket] = {}

    def ticket_for_message_ids(self, message_ids: tuple[str, ...]) -> int | None:
        missing = [mid for mid in message_ids if mid not in self.known and mid not in self.absent]
        if missing:
            for entry in self.session.scalars(
                select(MessageIdEntry).where(MessageIdEntry.message_id.in_(missing))
            ):
                self.known[entry.message_id] = entry
        # Most specific first: In-Reply-To, then References from newest to oldest.
        return next((self.known[mid].ticket_id for mid in message_ids if mid in self.known), None)

    def ticket_by_number(self, number: int) -> TicketRef | None:
        found = self.session.scalar(select(Ticket).where(Ticket.number == number))
        # A token or subject tag of a merged ticket names the ticket it lives on now.
        return self._ref(self.follow(found) if found is not None else None)

    def ticket_by_id(self, ticket_id: int) -> TicketRef | None:
        named = self.load(ticket_id)
        if named is None:
            return None
        current = self.follow(named)
        self.loaded[current.id] = current
        return self._ref(current)

    def follow(self, ticket: Ticket) -> Ticket:
        """The ticket whose conversation ``ticket`` holds now: itself, or (merged) the
        ticket it was merged into, read by ``load`` (so locked when the caller locks),
        and on through a chain of merges."""
        for _ in range(MAX_MERGE_HOPS):
            target_id = merged_into(self.session, ticket)
            target = self.load(target_id) if target_id is not None else None
            if target is None:
                return ticket
            ticket = target
        return ticket

    def _ref(self, ticket: Ticket | None) -> TicketRef | None:
        """The ticket with everyone who may write on it: requester and participants,
        everyone addressed on its messages (To/Cc) and by its notices, the admins of its
        customer account and the addresses of its suppliers."""
        if ticket is None or ticket.number is None:
            return None
        people = {ticket.requester, *(p.email for p in ticket.participants)}
        for to, cc in self.session.execute(
            select(TicketMessage.to, TicketMessage.cc).where(TicketMessage.ticket_id == ticket.id)
        ):
            people.update(address for _, address in getaddresses([*(to or []), *(cc or [])]))
        people.update(
            self.session.scalars(select(Notice.recipient).where(Notice.ticket_id == ticket.id))
        )
        if ticket.customer_id is not None:
            customer = self.session.get(Customer, ticket.customer_id)
            people.update(customer.admins if customer is not None else ())
        if ticket.suppliers_count:  # no statement for the many tickets without
            # The addresses of its attached suppliers (issue 22): their mail is theirs.
            for addresses in self.session.scalars(
                select(Supplier.addresses)
                .join(TicketSupplier, TicketSupplier.supplier_id == Supplier.id)
                .where(TicketSupplier.ticket_id == ticket.id)
            ):
                people.update(str(a) for a in addresses or [])
        return TicketRef(ticket.id, ticket.number, frozenset(p.lower() for p in people if p))


# Where ``read_for_group`` keeps what it read, in the session's ``info``.
GROUP_ENTRIES = "mailgate.group_message_ids"


@dataclass
class GroupEntries:
    """The index entries of the Message-IDs a group of messages names, read at once,
    and those found in none; kept current with the entries the group adds."""

    entries: dict[str, MessageIdEntry] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)


def read_for_group(session: Session, message_ids: Iterable[str]) -> None:
    """Read the entries of every Message-ID a group of messages names in one statement,
    for ``entries_for`` to answer from. Only where nothing but this transaction can add
    an entry until it commits: SQLite, whose one write lock the group holds (a bulk
    import's; on PostgreSQL another worker may add one meanwhile, and each message asks
    as it is processed). 100 look-ups were a twentieth of a bulk import's time."""
    named = {mid for mid in message_ids if mid}
    found = _entries(session, named)
    session.info[GROUP_ENTRIES] = GroupEntries(found, named - found.keys())


def entries_for(session: Session, named: Collection[str]) -> dict[str, MessageIdEntry]:
    """The index entries of ``named`` (Message-ID → entry; those with none left out):
    from what ``read_for_group`` read, and one statement for the others."""
    group: GroupEntries | None = session.info.get(GROUP_ENTRIES)
    if group is None:
        return _entries(session, named)
    asked = {mid for mid in named if mid not in group.entries and mid not in group.absent}
    if asked:
        found = _entries(session, asked)
        group.entries.update(found)
        group.absent |= asked - found.keys()
    return {mid: group.entries[mid] for mid in named if mid in group.entries}


def added_entry(session: Session, entry: MessageIdEntry) -> None:
    """``entry`` was added in this transaction: a later message of the group finds it."""
    group: GroupEntries | None = session.info.get(GROUP_ENTRIES)
    if group is not None:
        group.entries[entry.message_id] = entry
        group.absent.discard(entry.message_id)


def _entries(session: Session, named: Collection[str]) -> dict[str, MessageIdEntry]:
    if not named:
        return {}
    query = select(MessageIdEntry).where(MessageIdEntry.message_id.in_(named))
    return {entry.message_id: entry for entry in session.scalars(query)}


# A merge never targets a merged ticket, so a chain only grows when its last ticket is
# merged in turn; the bound is against a cycle that a hand-edited database could hold.
MAX_MERGE_HOPS = 16


def merged_into(session: Session, ticket: Ticket) -> int | None:
    """The id of the ticket ``ticket`` was merged into, if it was. A merged ticket is
    closed: an open one costs no query (every reply to an open ticket passes here)."""
    if ticket.closed_at is None:
        return None
    return session.scalar(
        select(TicketLink.other_ticket_id).where(
            TicketLink.ticket_id == ticket.id, TicketLink.kind == MERGED_INTO
        )
    )
