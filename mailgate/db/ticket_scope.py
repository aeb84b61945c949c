"""The tickets a customer may see, in the forms a search needs.

A search (``db/search.py``) ranks tickets from the newest back and stops once no older
one can make its page. Within a customer's tickets that walk must read the customer's
tickets newest first, not every ticket: an address in one ticket of 400 would walk 400
tickets for each of its own. So a scope is given as selects of ticket ids, each read
newest first from an index, and as a condition on one ticket row, which filters tickets
found another way (by the search index) without reading the whole scope. And as what
it is made of, an address and accounts, which the search index knows too: a word in
the scope's own tickets is then asked of the index (``search_probe``).
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    String,
    bindparam,
    except_,
    exists,
    or_,
    select,
    union,
)
from sqlalchemy.orm import Session

from mailgate.db.models import Participant, Ticket


@dataclass(frozen=True)
class TicketScope:
    """The tickets a customer may see: those ``address`` asked or takes part in, and
    every ticket of ``accounts`` (those whose admins list the address)."""

    address: str  # lower case, as tickets and participants store it
    accounts: tuple[int, ...] = ()

    @property
    def parts(self) -> tuple[Select[Any], ...]:
        """Selects of one column of ticket ids each, which an index gives newest first."""
        return _parts(self.address, self.accounts or None)

    @property
    def row(self) -> ColumnElement[bool]:
        """The same tickets as a condition on ``Ticket``, checked row by row."""
        taking_part = exists().where(
            Participant.ticket_id == Ticket.id, Participant.email == self.address
        )
        rows = [Ticket.requester == self.address, taking_part]
        if self.accounts:
            rows.append(Ticket.customer_id.in_(self.accounts))
        return or_(*rows)

    def asked(self) -> Select[Any]:
        """The ids of the tickets the address asked."""
        return _asked(self.address)

    def taking_part(self) -> Select[Any]:
        """The ids of the tickets the address takes part in."""
        return _taking_part(self.address)

    def taking_part_in_others(self) -> CompoundSelect[int]:
        """The ids of the tickets the address takes part in but did not ask: a requester
        takes part in every ticket they asked (2,500 at a million tickets). Two lists
        read from two indexes, and one taken from the other: joined to each ticket to
        compare its requester, 2,500 took 4 ms on SQLite."""
        return except_(self.taking_part(), self.asked())

    def ids(self) -> Select[Any]:
        """The scope's ticket ids, read set-wise: one id list from each index."""
        return union(*self.parts)  # type: ignore[return-value]

    def condition(self) -> ColumnElement[bool]:
        """A condition on ``Ticket`` that reads the scope's ids set-wise. PostgreSQL
        cannot plan an OR of subqueries on indexes; it read all 1,000,000 tickets for
        ``requester = … OR id IN (…)``."""
        return Ticket.id.in_(self.ids())

    def newest(self, session: Session, count: int, *, below: int | None = None) -> list[int]:
        """The ids of the newest ``count`` tickets of the scope (older than ``below``,
        when given), newest first: ``count`` rows at most from each part, in one
        statement (one per part cost an account admin's search eight round trips more
        at a million tickets)."""
        values: dict[str, Any] = {"address": self.address, "count": count}
        if self.accounts:
            values["accounts"] = list(self.accounts)
        if below is not None:
            values["below"] = below
        statement = _newest_shape(bool(self.accounts), below is not None)
        return list(session.scalars(statement, values))


@functools.lru_cache(maxsize=8)
def _newest_shape(accounts: bool, below: bool) -> Select[Any]:
    """``TicketScope.newest``'s statement, built once (a search asks for a scope's
    newest tickets up to four times) with its values bound by name: ``address``,
    ``accounts``, ``count`` and ``below``."""
    address = bindparam("address", type_=String)
    count = bindparam("count", type_=Integer)
    limited = []
    for part in _parts(address, bindparam("accounts", expanding=True) if accounts else None):
        column = part.selected_columns[0]
        newest = part.order_by(column.desc()).limit(count)
        if below:
            newest = newest.where(column < bindparam("below", type_=Integer))
        # As a subquery: SQLite takes no ORDER BY or LIMIT in a UNION's parts.
        limited.append(select(newest.subquery().c[0]))
    ids = union(*limited).subquery()
    return select(ids.c[0]).order_by(ids.c[0].desc()).limit(count)


def _asked(address: str | BindParameter[str]) -> Select[Any]:
    return select(Ticket.id).where(Ticket.requester == address)


def _taking_part(address: str | BindParameter[str]) -> Select[Any]:
    return select(Participant.ticket_id).where(Participant.email == address)


def _parts(
    address: str | BindParameter[str], accounts: Collection[int] | BindParameter[Any] | None
) -> tuple[Select[Any], ...]:
    parts = [_asked(address), _taking_part(address)]
    if accounts is not None:
        parts.append(select(Ticket.id).where(Ticket.customer_id.in_(accounts)))
    return tuple(parts)
