"""Read-only views for the CLI and scripts, as plain dicts with stable field names.

The field names here are a public contract (README "JSON output"): add fields,
never rename or remove them.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, func, select, union, union_all
from sqlalchemy.orm import Session, selectinload

from mailgate.core import sla
from mailgate.core.errors import NotFound
from mailgate.core.settings import TicketSettings
from mailgate.db.models import (
    Activity,
    Agent,
    Customer,
    HistoryEvent,
    InboundMessage,
    SlaEvent,
    Supplier,
    Team,
    Ticket,
    TicketDepartment,
    TicketHelper,
    TicketLink,
    TicketMessage,
    TicketSupplier,
)
from mailgate.db.names import names_by_id


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def linked_names(session: Session, ticket_id: int, name: Any, link: Any) -> dict[str, int]:
    """What a link table attaches to a ticket (helpers, departments, suppliers): each
    row by its ``name`` column (``Agent.email``), with its id, sorted by name. ``link``
    is the link table's column naming that row (``TicketHelper.agent_id``)."""
    model, table = name.class_, link.class_
    return {
        n: id_
        for n, id_ in session.execute(
            select(name, model.id)
            .join(table, link == model.id)
            .where(table.ticket_id == ticket_id)
            .order_by(name)
        )
    }


def ticket_exists(session: Session, number: int) -> bool:
    """Is there a ticket with public number ``number``?"""
    return session.scalar(select(Ticket.id).where(Ticket.number == number)) is not None


def ticket_summary(
    ticket: Ticket, agents: dict[int, str], teams: dict[int, str], customers: dict[int, str]
) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "subject": ticket.subject,
        "requester": ticket.requester,
        "requester_name": ticket.requester_name,
        "customer": customers.get(ticket.customer_id) if ticket.customer_id else None,
        "status": ticket.status,
        "type": ticket.type,
        "priority": ticket.priority,
        "team": teams.get(ticket.team_id) if ticket.team_id else None,
        "assignee": agents.get(ticket.assignee_id) if ticket.assignee_id else None,
        "language": ticket.language,
        "tags": list(ticket.tags),
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "first_response_at": _iso(ticket.first_response_at),
        "closed_at": _iso(ticket.closed_at),
        "follow_up_at": _iso(ticket.follow_up_at),
        "action_required_at": _iso(ticket.action_required_at),
    }


def summaries(session: Session, tickets: Iterable[Ticket]) -> list[dict[str, Any]]:
    """``ticket_summary`` of each ticket, the names of their agents, teams and accounts
    read once."""
    tickets = list(tickets)
    agents = names_by_id(session, Agent.email, (t.assignee_id for t in tickets))
    teams = names_by_id(session, Team.name, (t.team_id for t in tickets))
    customers = names_by_id(session, Customer.name, (t.customer_id for t in tickets))
    return [ticket_summary(t, agents, teams, customers) for t in tickets]


def statuses_in_use(session: Session) -> list[str]:
    """Every status some ticket has, in order: one seek of ix_tickets_status_id per
    status (a loose index scan, ``WITH RECURSIVE``), however many tickets there are."""
    # The anchor is min(): an ORDER BY ... LIMIT there would apply to the whole recursion.
    found = select(func.min(Ticket.status).label("status")).cte("found", recursive=True)
    after = (
        select(Ticket.status)
        .where(Ticket.status > found.c.status)
        .order_by(Ticket.status)
        .limit(1)
        .scalar_subquery()
    )
    found = found.union_all(select(after.label("status")).where(found.c.status.is_not(None)))
    return [s for s in session.scalars(select(found.c.status)) if s is not None]


def open_statuses(session: Session, tickets: TicketSettings) -> list[str]:
    """The statuses of the tickets that are open now: those in use that are not in the
    ``closed`` category, including any no longer configured (shown rather than hidden,
    as a filter "not closed" would)."""
    closed = {s.name for s in tickets.statuses if s.category == "closed"}
    return [s for s in statuses_in_use(session) if s not in closed]


def queue(
    session: Session,
    *,
    statuses: Collection[str],
    where: Collection[ColumnElement[bool]] = (),
    offset: int = 0,
    limit: int = 50,
    any_of: Sequence[Sequence[ColumnElement[bool]]] = (),
    order: Sequence[tuple[SQLColumnExpression[Any], bool]] = (),
) -> list[Ticket]:
    """Tickets with a status in ``statuses``, every condition in ``where`` and one of
    each group in ``any_of`` (a team's own tickets or those it is a department of), in
    ``order`` ((expression, descending) keys; default newest first): the rows ``offset``
    to ``offset + limit`` (a queue page).

    Each status (and each alternative of ``any_of``) is read on its own, in order and no
    further than the page's end, from ix_tickets_status_id (or the team's or assignee's
    index that goes on with status and id, or the helpers' and departments' tables),
    and the pieces are merged. One walk of the table in id order, filtering on "status
    NOT IN (closed)", read as far as it had to for a page of open tickets: all of it
    when fewer are open (249 ms at a million tickets, issue 23)."""
    if not statuses:
        return []
    keys = list(order) or [(Ticket.id, True)]
    alternatives = list(itertools.product(*any_of)) if any_of else [()]
    pieces = [
        select(Ticket.id.label("id"), *(key.label(f"k{i}") for i, (key, _) in enumerate(keys)))
        .where(Ticket.status == status, *where, *alternative)
        .order_by(*(key.desc() if desc else key.asc() for key, desc in keys))
        .limit(offset + limit)
        .subquery()
        for status in sorted(statuses)
        for alternative in alternatives
    ]
    if len(pieces) == 1 and not order:
        query = select(Ticket).where(Ticket.status == next(iter(statuses)), *where)
        return list(session.scalars(query.order_by(Ticket.id.desc()).offset(offset).limit(limit)))
    merged = union_all if len(alternatives) == 1 else union  # a ticket may be two alternatives
    ids = merged(*(select(piece) for piece in pieces)).subquery()
    # Sorted by the pieces' columns: sorting by the table's, SQLite walks the table instead.
    ranked = [
        ids.c[f"k{i}"].desc() if desc else ids.c[f"k{i}"].asc() for i, (_, desc) in enumerate(keys)
    ]
    query = select(Ticket).join(ids, Ticket.id == ids.c.id).order_by(*ranked)
    return list(session.scalars(query.offset(offset).limit(limit)))


def screening_categories(session: Session, ticket_ids: Collection[int]) -> dict[int, str]:
    """The screening category (``core.screening``: ordinary, bulk, auto_reply, …) of the
    first inbound message of each ticket in ``ticket_ids`` (a queue page), by ticket id;
    a ticket opened by staff or an integration (no screened mail) is left out."""
    if not ticket_ids:
        return {}
    first = (
        select(func.min(TicketMessage.id))
        .where(TicketMessage.ticket_id.in_(ticket_ids), TicketMessage.direction == "inbound")
        .group_by(TicketMessage.ticket_id)
    )
    rows = session.execute(
        select(TicketMessage.ticket_id, TicketMessage.screening).where(TicketMessage.id.in_(first))
    )
    return {tid: found["category"] for tid, found in rows if found and found.get("category")}


def first_screening_category(messages: list[dict[str, Any]]) -> str | None:
    """The same for one ticket shown by ``show_ticket``: its first inbound message's."""
    inbound = next((m for m in messages if m["direction"] == "inbound"), None)
    return (inbound["screening"] or {}).get("category") if inbound else None


def show_ticket(
    session: Session, number: int, targets: sla.Targets | None = None
) -> dict[str, Any]:
    """One ticket with its participants, messages, attachments, links, history, SLA due
    times (from ``targets``, the ``[sla]`` config) and the due events that fired."""
    ticket = session.scalar(
        select(Ticket)
        .where(Ticket.number == number)
        .options(selectinload(Ticket.messages).selectinload(TicketMessage.attachments))
    )
    if ticket is None:
        raise NotFound(f"no ticket #{number}")
    out = summaries(session, [ticket])[0]
    out["helpers"] = list(linked_names(session, ticket.id, Agent.email, TicketHelper.agent_id))
    out["departments"] = list(linked_names(session, ticket.id, Team.name, TicketDepartment.team_id))
    # No statement for a ticket without suppliers (suppliers_count), most of them.
    suppliers = TicketSupplier.supplier_id
    out["suppliers"] = (
        list(linked_names(session, ticket.id, Supplier.name, suppliers))
        if ticket.suppliers_count
        else []
    )
    clock = sla.TicketClock(ticket.priority, ticket.created_at, closed=False)
    for kind, due in sla.target_times(clock, targets or sla.Targets()).items():
        out[f"{kind}_due_at"] = _iso(due)
    fired = session.scalars(
        select(SlaEvent).where(SlaEvent.ticket_id == ticket.id).order_by(SlaEvent.id)
    )
    out["sla_events"] = [
        {
            "kind": e.kind,
            "due_at": _iso(e.due_at),
            "fired_at": _iso(e.fired_at),
            "breached": e.breached,
        }
        for e in fired
    ]
    out["participants"] = [{"email": p.email, "role": p.role} for p in ticket.participants]
    inbound_ids = [m.inbound_id for m in ticket.messages if m.inbound_id is not None]
    found = session.execute(
        select(InboundMessage.id, InboundMessage.defects).where(InboundMessage.id.in_(inbound_ids))
    )
    defects = {inbound_id: value for inbound_id, value in found}
    out["messages"] = [_message(m, defects.get(m.inbound_id, [])) for m in ticket.messages]
    links = list(session.scalars(select(TicketLink).where(TicketLink.ticket_id == ticket.id)))
    linked_ids = [link.other_ticket_id for link in links]
    numbers: dict[int, int | None] = {
        tid: number
        for tid, number in session.execute(
            select(Ticket.id, Ticket.number).where(Ticket.id.in_(linked_ids))
        )
    }
    out["links"] = [
        {"number": numbers.get(link.other_ticket_id), "kind": link.kind} for link in links
    ]
    events = session.scalars(
        select(HistoryEvent).where(HistoryEvent.ticket_id == ticket.id).order_by(HistoryEvent.id)
    )
    out["history"] = [
        {
            "at": _iso(e.at),
            "actor": e.actor,
            "action": e.action,
            "field": e.field,
            "old": e.old,
            "new": e.new,
            "detail": e.detail,
        }
        for e in events
    ]
    # Time logged on it (internal, like notes: the customer's pages do not show it).
    out["activities"] = [
        {
            "at": _iso(a.created_at),
            "actor": a.actor,
            "type": a.type,
            "minutes": a.minutes,
            "text": a.text,
        }
        for a in session.scalars(
            select(Activity).where(Activity.ticket_id == ticket.id).order_by(Activity.id)
        )
    ]
    return out


def _message(m: TicketMessage, defects: list[str]) -> dict[str, Any]:
    return {
        "id": m.id,
        "direction": m.direction,
        "from": m.author_email,
        "from_name": m.author_name,
        "to": list(m.to),
        "cc": list(m.cc),
        "subject": m.subject,
        "body": m.body_text,
        "body_html": m.body_html,
        "message_id": m.message_id,
        "thread_method": m.thread_method,
        "after_close": m.after_close,
        "screening": m.screening,
        "created_at": _iso(m.created_at),
        "defects": list(defects),
        "attachments": [
            {
                "id": a.id,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "content_id": a.content_id,
                "inline": a.inline,
                "omitted": a.omitted,
            }
            for a in m.attachments
        ],
    }
