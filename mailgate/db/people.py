"""The name to show for a person on a ticket: one rule for the history, the message
headers (customer and agent pages) and the name a portal reply is stored under.

An agent is shown by their directory name. Anyone else by the name they first wrote
under on the ticket: the requester's is the ticket's ``requester_name`` (their first
mail's From name), another's the From name of their first mail there that had one. The
first rather than the newest, so a later mail does not rename what was already shown.
The address only when no name is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core.states import FROM_SUPPLIER
from mailgate.db.models import Agent, Ticket, TicketMessage

# Messages whose From name is the author's own: what a customer or a supplier's contact
# sent. An agent's typed message carries the agent's name, and an integration's the
# support address with the integration's name, which is no name of that address.
_FROM_OUTSIDE = ("inbound", FROM_SUPPLIER)


def display_name(address: str, names: Mapping[str, str], own: str = "") -> str:
    """The name to show for ``address``: the known name (``names``, from ``ticket_names``
    or ``customer_names``), else ``own`` (the name a message carries), else the address."""
    return names.get(address.strip().lower(), "") or own.strip() or address


@dataclass(frozen=True)
class Names:
    """Who is who on one ticket: the name of each address known there, and which
    addresses are agents'."""

    names: Mapping[str, str]
    agents: frozenset[str]

    def of(self, address: str, own: str = "") -> str:
        """``display_name`` of ``address`` on this ticket."""
        return display_name(address, self.names, own)

    def is_agent(self, address: str) -> bool:
        return address.strip().lower() in self.agents


def customer_names(session: Session, ticket: Ticket) -> dict[str, str]:
    """address -> name of the people outside who wrote on ``ticket`` (module docstring)."""
    rows = session.execute(
        select(TicketMessage.author_email, TicketMessage.author_name)
        .where(
            TicketMessage.ticket_id == ticket.id,
            TicketMessage.direction.in_(_FROM_OUTSIDE),
            TicketMessage.author_name != "",
        )
        .order_by(TicketMessage.id)
    )
    found: dict[str, str] = {}
    for email, name in rows:
        if email and name.strip():
            found.setdefault(email.strip().lower(), name.strip())
    # The requester's name is the ticket's own, as the agent page's Requester shows it.
    requester, requester_name = ticket.requester.lower(), ticket.requester_name.strip()
    if requester_name:
        found[requester] = requester_name
    return found


def ticket_names(session: Session, ticket: Ticket) -> Names:
    """Everyone's name on ``ticket``: the people outside, and every agent (former ones
    too, who are in older history) by their directory name."""
    found = customer_names(session, ticket)
    agents: set[str] = set()
    for email, name in session.execute(select(Agent.email, Agent.name)):
        agents.add(email)
        if name.strip():
            found[email] = name.strip()
    return Names(found, frozenset(agents))
