"""Which ticket a message belongs to, first hit wins (DESIGN.md §3). Pure: data comes
through a ``ThreadLookup`` the caller implements over the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mailgate.core.message import ParsedMessage
from mailgate.threading.headers import find_subject_tag
from mailgate.threading.tokens import plus_token, read_message_id, read_reply_token


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

    def number_of(self, ticket_id: int) -> int | None:
        """The public number of the ticket with this id."""


@dataclass(frozen=True)
class Resolution:
    ticket_id: int | None
    method: str  # references | token | subject_tag | new
    reason: str
    linked_number: int | None = None


@dataclass(frozen=True)
class ThreadClues:
    """What the message says about its thread besides its own headers."""

    # Envelope recipients (RCPT TO), where a plus-address token survives a client
    # that rewrites To.
    envelope_to: tuple[str, ...] = ()
    # For a bounce: the Message-IDs of the message it reports on (RFC 3464).
    reported_ids: tuple[str, ...] = ()
    # A trusted Authentication-Results said dmarc=fail: the From is forged.
    dmarc_failed: bool = False


def resolve(
    parsed: ParsedMessage,
    lookup: ThreadLookup,
    *,
    tag_prefix: str,
    secrets: Sequence[str] = (),
    clues: ThreadClues = ThreadClues(),
) -> Resolution:
    """Find the ticket ``parsed`` replies to, or decide it opens a new one."""
    found = _find(parsed, lookup, tag_prefix=tag_prefix, secrets=secrets, clues=clues)
    if found.ticket_id is not None and clues.dmarc_failed:
        # Invariant 6 with a forged From: nobody may join a ticket in someone else's
        # name. Message-IDs are no secret (they sit in every quoted reply), so even the
        # references index does not let a DMARC failure in: it opens a linked ticket.
        return Resolution(
            None,
            "new",
            f"{found.reason}, but DMARC failed: not joined",
            linked_number=found.linked_number or lookup.number_of(found.ticket_id),
        )
    return found


def _find(
    parsed: ParsedMessage,
    lookup: ThreadLookup,
    *,
    tag_prefix: str,
    secrets: Sequence[str],
    clues: ThreadClues,
) -> Resolution:
    ids = tuple(
        dict.fromkeys(parsed.in_reply_to + tuple(reversed(parsed.references)) + clues.reported_ids)
    )
    if ids:
        ticket_id = lookup.ticket_for_message_ids(ids)
        if ticket_id is not None:
            return Resolution(ticket_id, "references", "In-Reply-To/References matched")
    token = _token(parsed, ids, secrets, clues)
    if token is not None:
        token_number, where = token
        ref = lookup.ticket_by_number(token_number)
        if ref is not None:
            return Resolution(ref.id, "token", f"signed token for #{token_number} in {where}")
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
    return Resolution(None, "new", "no thread headers, token or tag matched")


def _token(
    parsed: ParsedMessage, ids: tuple[str, ...], secrets: Sequence[str], clues: ThreadClues
) -> tuple[int, str] | None:
    """A ticket number from a signed token: in a Message-ID mailgate minted, else in a
    plus-address (RFC 5233) of To, Cc, Delivered-To or the envelope. Forged or foreign
    tokens read as None (tokens.py checks every current and old secret)."""
    if not secrets:
        return None
    for mid in ids:
        number = read_message_id(mid, secrets)
        if number is not None:
            return number, "a Message-ID we minted"
    addresses = (
        [a.email for a in parsed.to + parsed.cc]
        + list(parsed.header_all("delivered-to"))
        + list(parsed.header_all("x-original-to"))
        + list(clues.envelope_to)
    )
    for address in addresses:
        detail = plus_token(address.strip().strip("<>"))
        number = read_reply_token(detail, secrets) if detail else None
        if number is not None:
            return number, "a plus-address"
    return None
