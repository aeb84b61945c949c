"""Agent pages: password sign-in, the queue and the ticket page.

The actions on a ticket are in ``agent_actions``; a reply and a note in ``agent_messages``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailgate.core import sla
from mailgate.core.attachments import FileRefused
from mailgate.core.errors import InvalidValue, NotFound
from mailgate.core.statuses import is_closed
from mailgate.db import people, queries, search, ticket_filters
from mailgate.db import todos as todo_rows
from mailgate.db.models import Agent, Customer, Supplier, Team, Ticket
from mailgate.db.names import listed_names
from mailgate.tickets import canned_responses as responses
from mailgate.tickets import sign_in as signin
from mailgate.web import history, pages, passwords, ratelimit, sessions
from mailgate.web.auth import Principal, agent_only, client_ip, current, require_csrf
from mailgate.web.context import portal
from mailgate.web.i18n import N_
from mailgate.web.middleware import with_session
from mailgate.web.pages import error_text, plurals, render

router = APIRouter(include_in_schema=False)
Csrf = Depends(require_csrf)
AgentP = Annotated[Principal, Depends(agent_only)]
Short = Annotated[str, Form(max_length=500)]
PAGE_SIZE = 50


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/agent/sign-in")
def sign_in_form(request: Request, next: str = "") -> Response:
    principal = current(request)
    if principal is not None and principal.is_agent:
        return _redirect(signin.safe_next(next) or "/agent")
    return render(request, "agent_sign_in.html", next=signin.safe_next(next))


@router.post("/agent/sign-in", dependencies=[Csrf])
def sign_in(request: Request, email: Short, password: Short, next: Short = "") -> Response:
    p = portal(request)
    at, web = p.now(), p.settings.web
    # The attempt is counted, and decided counting itself, before the password is looked
    # at, in a transaction of its own: the bucket locks are held for that decision only,
    # never across the (slow on purpose) password hash.
    with p.store.transaction() as session:
        turn = ratelimit.password_turn(
            session,
            account=ratelimit.bucket("password-address", email),
            client=ratelimit.bucket("password-ip", client_ip(request)),
            web=web,
            at=at,
        )
    if turn.refused:
        return _too_many_failures(request, next, turn)
    with p.store.transaction() as session:
        agent = passwords.check_password(session, email, password, at)
        if agent is not None:
            # Right: the attempt was no failure.
            ratelimit.forget(session, turn.hit_ids)
            sid = sessions.start(
                session,
                kind="agent",
                email=agent.email,
                agent_id=agent.id,
                at=at,
                hours=web.session_hours,
                credential_generation=agent.credential_generation,
            )
    if agent is None:
        return render(
            request,
            "agent_sign_in.html",
            401,
            next=next,
            error=N_("That email and password do not match an active agent."),
        )
    return with_session(request, _redirect(signin.safe_next(next) or "/agent"), sid)


def _too_many_failures(request: Request, next: str, turn: ratelimit.PasswordTurn) -> Response:
    ngettext = plurals(request)
    if turn.refused == "client":
        n = -(-turn.retry_after // 60)
        words = ngettext(
            "Too many failed sign-ins from your address. Please try again in %(n)s minute.",
            "Too many failed sign-ins from your address. Please try again in %(n)s minutes.",
            n,
        )
    else:
        n = turn.retry_after
        words = ngettext(
            "Too many failed sign-ins for this account just now. "
            "Please wait %(n)s second and try again.",
            "Too many failed sign-ins for this account just now. "
            "Please wait %(n)s seconds and try again.",
            n,
        )
    # Translated here (a number in it): the page's _() gets it with its % doubled.
    error = (words % {"n": n}).replace("%", "%%")
    page = render(request, "agent_sign_in.html", 429, next=next, error=error)
    page.headers["Retry-After"] = str(turn.retry_after)
    return page


QueueParam = Annotated[str, Query(max_length=320)]


@router.get("/agent")
def queue(
    request: Request,
    principal: AgentP,
    status: QueueParam = "open",
    team: QueueParam = "",
    assignee: QueueParam = "",
    priority: QueueParam = "",
    type: QueueParam = "",
    tag: QueueParam = "",
    customer: QueueParam = "",
    due_before: QueueParam = "",
    sort: QueueParam = "created",
    page: int = 1,
    q: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """The queue: the shared filters of ``tickets list`` and ``GET /api/tickets``, with
    the counts of open tickets per status and per assignee under the other filters."""
    p = portal(request)
    page = max(1, min(page, 10_000))
    # A search (``q`` with a word) lists the best matches of every status instead.
    q = q.strip() if search.terms(q) else ""
    chosen = {
        "status": status, "team": team, "assignee": assignee, "priority": priority,
        "type": type, "tag": tag, "customer": customer, "due_before": due_before, "sort": sort,
    }  # fmt: skip
    error = ""
    with p.store.transaction() as session:
        agents = list(session.scalars(select(Agent).order_by(Agent.email)))
        teams = {t.name: t.id for t in session.scalars(select(Team).order_by(Team.name))}
        customers = listed_names(session, Customer.name)  # None: too many to list
        rows: list[Ticket] = []
        by_status: dict[str, int] = {}
        by_assignee: dict[int | None, int] = {}
        try:
            view = ticket_filters.TicketFilter(
                status=status or "open",
                team=team or None,
                assignee=assignee or None,
                priority=priority or None,
                type=type or None,
                tag=tag or None,
                customer=customer or None,
                due_before=sla.parse_when(due_before, p.now()) if due_before else None,
                sort=sort or "created",
                me_id=principal.agent_id,
            )
            selection = ticket_filters.where(session, view, p.settings.tickets)
            if q:
                rows = search.search(session, q, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1)
            else:
                rows = queries.queue(
                    session,
                    statuses=ticket_filters.statuses(session, view.status, p.settings.tickets),
                    where=selection.where,
                    any_of=selection.any_of,
                    order=ticket_filters.order(view, p.settings.tickets),
                    offset=(page - 1) * PAGE_SIZE,
                    limit=PAGE_SIZE + 1,
                )
            open_now = queries.open_statuses(session, p.settings.tickets)
            by_status, by_assignee = ticket_filters.counts(session, open_now, selection)
        except InvalidValue as exc:
            error = error_text(request, exc)  # a hand-edited link: say what is wrong, keep the page
        names = {a.id: a.email for a in agents}
        categories = queries.screening_categories(session, [t.id for t in rows[:PAGE_SIZE]])
    return render(
        request,
        "agent_queue.html",
        400 if error else 200,
        error=error,
        tickets=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        page=page,
        q=q,
        chosen=chosen,
        paging=urlencode({k: v for k, v in chosen.items() if v}),
        sorts=ticket_filters.SORTS,
        teams=list(teams),
        customers=customers,
        agents=[a for a in agents if a.active],
        names=names,
        team_names={v: k for k, v in teams.items()},
        categories=categories,
        by_status=by_status,
        by_assignee=sorted(
            by_assignee.items(), key=lambda kv: (kv[0] is None, names.get(kv[0] or 0, ""))
        ),
    )


def ticket_page(
    request: Request,
    principal: Principal,
    number: int,
    status: int = 200,
    *,
    values: dict[str, str] | None = None,
    refused: FileRefused | None = None,
    refused_form: str = "",
) -> Response:
    """The agent's view of ticket ``number``: every message, notes, history, actions.
    After a refused file, its form (``refused_form``: reply or note) says which and why,
    with the words typed in it (``values``) kept."""
    p = portal(request)
    with p.store.transaction() as session:
        try:
            ticket = queries.show_ticket(session, number, sla.Targets.from_settings(p.settings.sla))
        except NotFound:
            raise HTTPException(404, N_("There is no such ticket.")) from None
        agents = [a.email for a in session.scalars(select(Agent).order_by(Agent.email)) if a.active]
        teams = list(session.scalars(select(Team.name).order_by(Team.name)))
        suppliers = list(session.scalars(select(Supplier.name).order_by(Supplier.name)))
        canned = responses.names(session)
        todos = todo_rows.list_todos(session, now=p.now(), ticket_number=number, include_done=True)
        row = session.scalar(select(Ticket).where(Ticket.number == number))
        assert row is not None  # show_ticket found it, in this transaction
        names = people.ticket_names(session, row)
    lang = pages.language(request)
    reader = history.Reader(
        gettext=pages.gettext(request),
        language=lang,
        names=names,
        tickets=p.settings.tickets,
        when=pages.environment(lang).filters["when"],
    )
    return render(
        request,
        "agent_ticket.html",
        status,
        t=ticket,
        people=names,
        history=history.lines(ticket["history"], reader),
        agents=agents,
        teams=teams,
        suppliers=suppliers,
        responses=canned,
        todos=todos,
        closed=is_closed(ticket["status"], p.settings.tickets),
        category=queries.first_screening_category(ticket["messages"]),
        values=values or {},
        refused=refused,
        refused_form=refused_form,
        file_limit=p.settings.limits.max_attachment_bytes,
    )
