"""Which ticket a message belongs to, first hit wins (DESIGN.md §3). Pure: data comes
through a ``ThreadLookup`` the caller implements over the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailgate.message import ParsedMessage
from mailgate.threading.headers import find_subject_tag


@dataclass(frozen=True)
class TicketRef:
    id: int
    number: int
    participants: frozenset[str]


class ThreadLookup(Protocol):
    def ticket_for_message_ids(self, message_ids: tuple[str, ...]) -> int | None:
        """The ticket that any of these Message-IDs (seen or sent) belongs to."""

    def ticket_by_number(self, number: int) -> TicketRef | None:
        """The ticket with this public number."""


@dataclass(frozen=True)
class Resolution:
    ticket_id: int | None
    method: str  # references | subject_tag | new
    reason: str
    linked_number: int | None = None


def resolve(parsed: ParsedMessage, lookup: ThreadLookup, *, tag_prefix: str) -> Resolution:
    """Find the ticket ``parsed`` replies to, or decide it opens a new one."""
    ids = tuple(dict.fromkeys(parsed.in_reply_to + tuple(reversed(parsed.references))))
    if ids:
        ticket_id = lookup.ticket_for_message_ids(ids)
        if ticket_id is not None:
            return Resolution(ticket_id, "references", "In-Reply-To/References matched")
    number = find_subject_tag(parsed.subject, tag_prefix)
    if number is not None:
        ref = lookup.ticket_by_number(number)
        if ref is None:
            return Resolution(None, "new", f"subject tag #{number} names no ticket")
        sender = parsed.sender.email.lower() if parsed.sender else ""
        if sender and sender in ref.participants:
            return Resolution(ref.id, "subject_tag", f"subject tag #{number}, sender takes part")
        # Invariant 6: a tag alone never lets a stranger into a ticket.
        return Resolution(
            None,
            "new",
            f"subject tag #{number} but sender does not take part",
            linked_number=number,
        )
    return Resolution(None, "new", "no thread headers or tag matched")
