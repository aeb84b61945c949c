"""Queue views (issue 20, item 5): one reading of the filters and sort orders that
``tickets list``, ``GET /api/tickets`` and the agent queue share, made into SQL.

A filter names things as people do (a status or its category, a team, an agent's
email, ``none``); ``where`` turns it into conditions on ``Ticket`` and says which
statuses to read, so ``queries.queue`` can read each status from its index and stop
at the page's end, whatever the sort order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    case,
    exists,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from mailgate.core.errors import InvalidValue
from mailgate.core.settings import TicketSettings
from mailgate.db import queries, search
from mailgate.db.models import Agent, Customer, Team, Ticket, TicketDepartment, TicketHelper
from mailgate.db.planner import rare

NONE = "none"
ME = "me"
SORTS = ("created", "updated", "priority", "due")
# Words for whole sets of statuses, besides each status's name and each category.
OPEN, ALL = "open", "all"


@dataclass(frozen=True)
class TicketFilter:
    """What a queue view shows. Every field left None shows all.

    ``status``: a status, a category (``new``, ``active``, ``waiting``, ``on_hold``,
    ``closed``), ``open`` or ``all``. ``team``: the ticket's team or one of its
    departments (``none``: no team). ``assignee``: the owner's email, ``none``, or ``me``
    (with ``me_id``: "My tickets", those the agent owns or helps on). ``due_before``: a
    follow-up or action-required date before then."""

    status: str | None = None
    priority: str | None = None
    type: str | None = None
    team: str | None = None
    assignee: str | None = None
    tag: str | None = None
    customer: str | None = None
    due_before: datetime | None = None
    sort: str = "created"
    me_id: int | None = None


def due_at() -> ColumnElement[Any]:
    """A ticket's next date: the earlier of its follow-up and action-required dates."""
    follow, action = Ticket.follow_up_at, Ticket.action_required_at
    return case(
        (follow.is_(None), action),
        (action.is_(None), follow),
        (follow < action, follow),
        else_=action,
    )


def statuses(session: Session, wanted: str | None, tickets: TicketSettings) -> list[str]:
    """The statuses a view reads: ``open`` (the default) and ``all`` as the tickets
    have them (a status no longer configured is still shown), a category's, or one
    (configured, or one tickets still have); another is ``InvalidValue``."""
    categories = {s.category for s in tickets.statuses}
    if wanted in (None, OPEN):
        return queries.open_statuses(session, tickets)
    if wanted == ALL:
        return queries.statuses_in_use(session)
    if wanted in categories:
        return [s.name for s in tickets.statuses if s.category == wanted]
    known = {s.name for s in tickets.statuses}
    if wanted not in known and wanted not in queries.statuses_in_use(session):
        names = ", ".join([*known, *sorted(categories), OPEN, ALL])
        raise InvalidValue(
            "unknown status %(status)r (known: %(known)s)", status=wanted, known=names
        )
    return [wanted]


@dataclass(frozen=True)
class Selection:
    """The conditions besides the status: ``where``, all of which hold, and groups of
    which one of each holds (``any_of``: a team's tickets are those of the team and
    those it is a department of), each alternative one index's way in."""

    where: tuple[ColumnElement[bool], ...] = ()
    any_of: tuple[tuple[ColumnElement[bool], ...], ...] = ()

    def conditions(self) -> list[ColumnElement[bool]]:
        """All of it as conditions of one query (for counting)."""
        return [*self.where, *(or_(*group) for group in self.any_of)]


def where(session: Session, f: TicketFilter, tickets: TicketSettings) -> Selection:
    """What view ``f`` selects besides the status. An unknown team, agent or account is
    ``InvalidValue``: a misspelt filter must not show an empty queue as if all were well."""
    out: list[ColumnElement[bool]] = []
    groups: list[tuple[ColumnElement[bool], ...]] = []
    if f.priority is not None:
        _known("priority", f.priority, tickets.priorities)
        out.append(Ticket.priority == f.priority)
    if f.type is not None:
        _known("type", f.type, tickets.types)
        out.append(Ticket.type == f.type)
    if f.team is not None:
        groups.append(_team(session, f.team))
    if f.assignee is not None:
        groups.append(_assignee(session, f))
    if f.tag is not None:
        out.append(_has_tag(session, f.tag.strip().lower()))
    if f.customer is not None:
        found = session.scalar(select(Customer.id).where(Customer.name == f.customer))
        if found is None:
            raise InvalidValue("no customer account %(customer)r", customer=f.customer)
        out.append(Ticket.customer_id == found)
    if f.due_before is not None:
        out.append(due_at() < f.due_before)
    return Selection(tuple(out), tuple(groups))


# A sort key: an expression on Ticket and whether it sorts descending.
SortKey = tuple[SQLColumnExpression[Any], bool]


def order(f: TicketFilter, tickets: TicketSettings) -> list[SortKey]:
    """The sort: newest first (created), most recently changed first (updated), most
    urgent first (priority, in the order of ``tickets.priorities``, last most urgent),
    soonest due first (due; tickets without a date last). The id breaks ties."""
    if f.sort not in SORTS:
        raise InvalidValue(
            "unknown sort %(sort)r (known: %(known)s)", sort=f.sort, known=", ".join(SORTS)
        )
    newest: SortKey = (Ticket.id, True)
    if f.sort == "updated":
        return [(Ticket.updated_at, True), newest]
    if f.sort == "priority":
        rank = case(
            {p: i for i, p in enumerate(tickets.priorities)}, value=Ticket.priority, else_=-1
        )
        return [(rank, True), newest]
    if f.sort == "due":
        due = due_at()
        return [(due.is_(None), False), (due, False), newest]
    return [newest]


def counts(
    session: Session, statuses_read: Sequence[str], selection: Selection
) -> tuple[dict[str, int], dict[int | None, int]]:
    """(tickets per status, per assignee id) among ``statuses_read`` under ``conditions``:
    the counts beside the agent queue."""
    if not statuses_read:
        return {}, {}
    # Few tickets are open, however many there are (db.planner).
    open_now = rare(Ticket.status.in_(statuses_read))
    rows = session.execute(
        select(Ticket.status, Ticket.assignee_id, func.count())
        .where(open_now, *selection.conditions())
        .group_by(Ticket.status, Ticket.assignee_id)
    )
    by_status: dict[str, int] = {}
    by_assignee: dict[int | None, int] = {}
    for status, assignee_id, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        by_assignee[assignee_id] = by_assignee.get(assignee_id, 0) + n
    return by_status, by_assignee


def _known(what: str, value: str, known: Sequence[str]) -> None:
    if value not in known:
        # One sentence each, for the translators.
        if what == "priority":
            raise InvalidValue(
                "unknown priority %(priority)r (known: %(known)s)",
                priority=value,
                known=", ".join(known),
            )
        raise InvalidValue(
            "unknown type %(type)r (known: %(known)s)", type=value, known=", ".join(known)
        )


def _team(session: Session, name: str) -> tuple[ColumnElement[bool], ...]:
    if name == NONE:
        return (Ticket.team_id.is_(None),)
    team_id = session.scalar(select(Team.id).where(Team.name == name))
    if team_id is None:
        raise InvalidValue("no team %(team)r", team=name)
    involved = select(TicketDepartment.ticket_id).where(TicketDepartment.team_id == team_id)
    return (Ticket.team_id == team_id, Ticket.id.in_(involved))


def _assignee(session: Session, f: TicketFilter) -> tuple[ColumnElement[bool], ...]:
    assert f.assignee is not None
    if f.assignee == NONE:
        return (Ticket.assignee_id.is_(None),)
    if f.assignee == ME:
        if f.me_id is None:
            raise InvalidValue("'me' needs an agent: sign in as one, or give --as AGENT")
        helping = select(TicketHelper.ticket_id).where(TicketHelper.agent_id == f.me_id)
        # My tickets: the ones I own and the ones I help on.
        return (Ticket.assignee_id == f.me_id, Ticket.id.in_(helping))
    found = session.scalar(select(Agent.id).where(Agent.email == f.assignee.strip().lower()))
    if found is None:
        raise InvalidValue("no agent %(agent)r", agent=f.assignee)
    return (Ticket.assignee_id == found,)


def _has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    """Tags are a JSON array on the ticket: a contains test on PostgreSQL (jsonb), a
    json_each walk on SQLite."""
    if not tag:
        return false()
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        contains: ColumnElement[bool] = Ticket.tags.cast(JSONB).contains([tag])
        return contains
    each = func.json_each(Ticket.tags).table_valued("value")
    return exists(select(true()).select_from(each).where(each.c.value == tag))


def summaries(
    session: Session,
    f: TicketFilter,
    tickets: TicketSettings,
    *,
    limit: int = 50,
    query: str | None = None,
) -> list[dict[str, Any]]:
    """The tickets of view ``f`` as ``queries.ticket_summary`` shows them, ``limit`` at
    most (0: all). Without a status the view shows every status (scripts' default).
    With ``query``, the tickets of the view that match that search, best first."""
    wanted = statuses(session, f.status or ALL, tickets)
    selection = where(session, f, tickets)
    if query is not None:
        in_status = [Ticket.status.in_(wanted)] if f.status else []
        rows = search.search(
            session, query, where=[*in_status, *selection.conditions()], limit=limit
        )
    else:
        rows = queries.queue(
            session,
            statuses=wanted,
            where=selection.where,
            any_of=selection.any_of,
            order=order(f, tickets),
            limit=limit or 2**31 - 1,
        )
    return queries.summaries(session, rows)
