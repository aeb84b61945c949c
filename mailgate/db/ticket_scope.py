"""Some of the tickets, such as those a customer may see, in the forms a search needs.

A search (``db/search.py``) ranks tickets from the newest back and stops once no older
one can make its page. Within a customer's tickets that walk must read the customer's
tickets newest first, not every ticket: an address in one ticket of 400 would walk 400
tickets for each of its own. So a scope is given as selects of ticket ids, each read
newest first from an index, and as a condition on one ticket row, which filters tickets
found another way (by the search index) without reading the whole scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, union
from sqlalchemy.orm import Session

from mailgate.db.models import Ticket


@dataclass(frozen=True)
class TicketScope:
    """The tickets the union of ``parts`` lists; ``row`` holds for exactly those."""

    # Each selects one column of ticket ids, which an index can give newest first.
    parts: tuple[Select[Any], ...]
    # The same tickets as a condition on ``Ticket``, checked row by row.
    row: ColumnElement[bool]

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
        when given), newest first: ``count`` rows at most from each part."""
        ids: set[int] = set()
        for part in self.parts:
            column = part.selected_columns[0]
            newest = part.order_by(column.desc()).limit(count)
            if below is not None:
                newest = newest.where(column < below)
            ids.update(session.scalars(newest))
        return sorted(ids, reverse=True)[:count]
