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
    # Everyone who may write on the ticket (lower case): its requester and participants,
    # everyone addressed (To/Cc) on any of its messages, its customer account's admins.
    participants: frozenset[str]


class ThreadLookup(Protocol):
    def ticket_for_message_ids(self, message_ids: tuple[str, ...]) -> int | None:
        """The ticket that any of these Message-IDs (seen or sent) belongs to."""

    def ticket_by_number(self, number: int) -> TicketRef | None:
        """The ticket with this public number."""

    def ticket_by_id(self, ticket_id: int) -> TicketRef | None:
        """The ticket with this id."""


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
    # The From cannot be believed (DMARC failed or judged another domain, or the From
    # is ambiguous): screening's ``forged``.
    forged: bool = False
    # A bounce, auto-reply or loop: filed on the ticket it names, never joining it.
    automatic: bool = False


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
    if found.ticket_id is not None and clues.forged:
        # Invariant 6 with a forged From: nobody may join a ticket in someone else's
        # name. Message-IDs are no secret (they sit in every quoted reply), so even the
        # references index does not let a forged sender in: it opens a linked ticket.
        ref = lookup.ticket_by_id(found.ticket_id)
        return Resolution(
            None,
            "new",
            f"{found.reason}, but the sender is forged: not joined",
            linked_number=found.linked_number or (ref.number if ref else None),
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
    sender = parsed.sender.email.lower() if parsed.sender else ""
    # Invariant 6: a Message-ID is no secret (quoted in every reply, forwarded freely), so
    # matching one proves nothing about the sender. It threads the mail of someone who
    # takes part (or was addressed, or administers the account), and automatic mail,
    # which never joins; a stranger's opens a new ticket linked to the one it names.
    stranger_of: TicketRef | None = None
    if ids:
        ticket_id = lookup.ticket_for_message_ids(ids)
        ref = lookup.ticket_by_id(ticket_id) if ticket_id is not None else None
        if ref is not None:
            if clues.automatic or sender in ref.participants:
                return Resolution(ref.id, "references", "In-Reply-To/References matched")
            stranger_of = ref
    token = _token(parsed, ids, secrets, clues)
    if token is not None:
        token_number, where, public = token
        ref = lookup.ticket_by_number(token_number)
        # A token in a plus-address was handed to the notice's recipient; one in a
        # Message-ID is as public as the Message-ID itself.
        if ref is not None and (not public or clues.automatic or sender in ref.participants):
            return Resolution(ref.id, "token", f"signed token for #{token_number} in {where}")
        stranger_of = stranger_of or ref
    if stranger_of is not None:
        return Resolution(
            None,
            "new",
            f"thread headers name #{stranger_of.number} but the sender takes no part in it",
            linked_number=stranger_of.number,
        )
    number = find_subject_tag(parsed.subject, tag_prefix)
    if number is not None:
        ref = lookup.ticket_by_number(number)
        if ref is None:
            return Resolution(None, "new", f"subject tag #{number} names no ticket")
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
) -> tuple[int, str, bool] | None:
    """A ticket number from a signed token: in a plus-address (RFC 5233) of To, Cc,
    Delivered-To or the envelope, else in a Message-ID mailgate minted; with where it
    was and whether that place is public (a Message-ID). Forged or foreign tokens read as
    None (tokens.py checks every current and old secret)."""
    if not secrets:
        return None
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
            return number, "a plus-address", False
    for mid in ids:
        number = read_message_id(mid, secrets)
        if number is not None:
            return number, "a Message-ID we minted", True
    return None
