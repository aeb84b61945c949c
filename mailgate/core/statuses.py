"""The ticket status machine: what an event does to a ticket's status. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.core.settings import TicketSettings


@dataclass(frozen=True)
class StatusChange:
    old: str
    new: str


def category(status: str, tickets: TicketSettings) -> str | None:
    """The category of ``status``; None for a status no longer in the config (such a
    ticket is left alone rather than guessed at)."""
    try:
        return tickets.category_of(status)
    except KeyError:
        return None


def is_closed(status: str, tickets: TicketSettings) -> bool:
    """True when ``status`` is in the ``closed`` category (invariant 4)."""
    try:
        return tickets.category_of(status) == "closed"
    except KeyError:
        return False


def after_customer_reply(status: str, tickets: TicketSettings) -> StatusChange | None:
    """A customer reply moves a ticket waiting on the customer back to the first active
    status; any other open status is left as it is; a closed ticket never changes."""
    try:
        category = tickets.category_of(status)
    except KeyError:
        return None
    if category == "waiting":
        return StatusChange(status, tickets.first_status("active"))
    return None


def new_ticket_status(tickets: TicketSettings) -> str:
    return tickets.first_status("new")


def can_change(old: str, new: str, tickets: TicketSettings) -> bool:
    """Closing is final: once a ticket's status is in the ``closed`` category, no status
    change at all, not even to another closed status (Resolved → Closed)."""
    return old != new and not is_closed(old, tickets)
