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


def after_customer_reply(
    status: str, tickets: TicketSettings, before: str | None = None
) -> StatusChange | None:
    """A customer reply moves a ticket waiting on the customer back to the status it had
    before it waited (``before``, read from its history by the caller), or to the first
    active status when that is unknown, new, closed, waiting too or no longer
    configured; any other open status is left as it is; a closed ticket never changes."""
    if category(status, tickets) != "waiting":
        return None
    back = before if before is not None and _can_return_to(before, tickets) else None
    return StatusChange(status, back or tickets.first_status("active"))


def _can_return_to(status: str, tickets: TicketSettings) -> bool:
    # Waiting again would leave the customer's answer unnoticed; closed is final; and a
    # ticket an agent has already moved is being worked on, as after a first reply, so
    # it does not go back to a `new` status.
    return category(status, tickets) not in (None, "new", "waiting", "closed")


def new_ticket_status(tickets: TicketSettings) -> str:
    return tickets.first_status("new")


def can_change(old: str, new: str, tickets: TicketSettings) -> bool:
    """Closing is final: once a ticket's status is in the ``closed`` category, no status
    change at all, not even to another closed status (Resolved → Closed)."""
    return old != new and not is_closed(old, tickets)
