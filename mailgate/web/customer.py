"""Customer pages: sign in by emailed link, list tickets, read one, reply, open a new one.

``/tickets/{number}`` is the address every notice links to; an agent who opens
it gets the agent view of the same ticket.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailgate.core.attachments import FileRefused
from mailgate.core.errors import ActionRefused, InvalidValue
from mailgate.core.states import INTERNAL_DIRECTIONS, SUPPLIER_DIRECTIONS
from mailgate.core.statuses import is_closed
from mailgate.db import people, search
from mailgate.db.models import Ticket, TicketMessage
from mailgate.tickets import messages, opening
from mailgate.tickets import sign_in as signin
from mailgate.tickets.records import CLOSED_EXPLANATION
from mailgate.web import access, agent, ratelimit, sessions, uploads
from mailgate.web.auth import Principal, current, customer_only, require_csrf, signed_in
from mailgate.web.auth import client_ip as client_ip_of
from mailgate.web.context import portal
from mailgate.web.files import attachment_response
from mailgate.web.i18n import N_
from mailgate.web.middleware import with_session
from mailgate.web.pages import error_text, render

router = APIRouter(include_in_schema=False)
Csrf = Depends(require_csrf)
Text = Annotated[str, Form(max_length=200_000)]
Short = Annotated[str, Form(max_length=500)]
# Ticket numbers are BIGINT; a larger number in a URL is simply not a ticket.
MAX_NUMBER = 2**53
SEARCH_LIMIT = 100  # a customer's search lists the best matches, one page


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def check_number(number: int) -> None:
    if not 0 < number <= MAX_NUMBER:
        raise HTTPException(404, N_("There is no such ticket."))


@router.get("/")
def home(request: Request) -> Response:
    principal = current(request)
    if principal is None:
        return redirect("/sign-in")
    return redirect("/agent" if principal.is_agent else "/tickets")


# --- sign-in by emailed link ---


@router.get("/sign-in")
def sign_in_form(request: Request, next: str = "") -> Response:
    principal = current(request)
    if principal is not None and not principal.is_agent:
        return redirect(signin.safe_next(next) or "/tickets")
    return render(request, "sign_in.html", next=signin.safe_next(next))


def _may_sign_in(session: Session, request: Request, email: str) -> bool:
    """Addresses with tickets, of a customer account, or anyone the intake policy lets in."""
    settings = portal(request).settings
    if opening.may_open(session, settings, email) is None:
        return True
    if access.supplier_of(session, email):
        return True  # a supplier's contact reads what agents wrote to it (issue 22)
    return (
        session.scalar(select(Ticket.id).where(access.visible_to_customer(session, email)).limit(1))
        is not None
    )


@router.post("/sign-in", dependencies=[Csrf])
def sign_in_request(request: Request, email: Short, next: Short = "") -> Response:
    p = portal(request)
    email = email.strip().lower()
    local, _, domain = email.rpartition("@")
    if not local or "." not in domain or any(ch.isspace() for ch in email):
        error = N_("Enter your email address.")
        return render(request, "sign_in.html", 400, next=next, error=error)
    at, web = p.now(), p.settings.web
    limits = {
        ratelimit.bucket("sign-in-address", email): web.sign_in_requests_per_address_per_hour,
        ratelimit.bucket("sign-in-ip", client_ip_of(request)): web.sign_in_requests_per_ip_per_hour,
    }
    with p.store.transaction() as session:
        # Counted first, then decided counting itself, under the buckets' lock (ratelimit):
        # parallel requests for one address send no more links than the limit.
        allowed = ratelimit.take(session, limits, at)
        # The answer is the same whether or not the address is known: no enumeration.
        if allowed and _may_sign_in(session, request, email):
            signin.send_link(session, p.settings, email, at, next)
    if not allowed:
        return render(
            request,
            "error.html",
            429,
            title=N_("Too many requests"),
            message=N_("Too many sign-in links were asked for. Please wait an hour and try again."),
        )
    return render(request, "sign_in_sent.html", email=email)


@router.get("/sign-in/{token}")
def sign_in_confirm(request: Request, token: str) -> Response:
    # A GET never spends the token: mail scanners fetch links. The button posts.
    p = portal(request)
    with p.store.transaction() as session:
        row = signin.peek(session, p.settings.security.secret, token, p.now())
    if row is None:
        return _link_gone(request)
    return render(request, "sign_in_confirm.html", token=token, email=row.email)


def _link_gone(request: Request) -> Response:
    return render(
        request,
        "error.html",
        410,
        title=N_("This link no longer works"),
        message=N_("Sign-in links work once and for a short time. Ask for a new one."),
        action=("/sign-in", N_("Send me a new link")),
    )


@router.post("/sign-in/{token}", dependencies=[Csrf])
def sign_in_with_link(request: Request, token: str) -> Response:
    p = portal(request)
    at = p.now()
    with p.store.transaction() as session:
        row = signin.use(session, p.settings.security.secret, token, at)
        if row is None:
            return _link_gone(request)
        sid = sessions.start(
            session,
            kind="customer",
            email=row.email,
            agent_id=None,
            at=at,
            hours=p.settings.web.session_hours,
        )
        target = row.next_path or "/tickets"
    return with_session(request, redirect(target), sid)


@router.post("/sign-out", dependencies=[Csrf])
def sign_out(request: Request) -> Response:
    p = portal(request)
    with p.store.transaction() as session:
        sessions.end(session, getattr(request.state, "sid", ""))
    return with_session(request, redirect("/sign-in"), sessions.new_sid(), signed_in=False)


# --- tickets ---


@router.get("/tickets")
def ticket_list(
    request: Request,
    principal: Annotated[Principal, Depends(signed_in)],
    status: str = "open",
    type: str = "",
    q: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    if principal.is_agent:
        return redirect("/agent" + (f"?{urlencode({'q': q})}" if q else ""))
    p = portal(request)
    settings = p.settings.tickets
    closed = [s.name for s in settings.statuses if s.category == "closed"]
    if search.terms(q):
        # Only in what this customer may see, and never in internal notes.
        with p.store.transaction() as session:
            visible = access.customer_scope(session, principal.email)
            rows = search.search(session, q, within=visible, internal=False, limit=SEARCH_LIMIT)
        return render(request, "tickets.html", tickets=rows, status=status, type=type, q=q.strip())
    with p.store.transaction() as session:
        query = select(Ticket).where(access.visible_to_customer(session, principal.email))
        if status == "open":
            query = query.where(Ticket.status.not_in(closed))
        elif status == "closed":
            query = query.where(Ticket.status.in_(closed))
        if type:
            query = query.where(Ticket.type == type)
        rows = list(session.scalars(query.order_by(Ticket.id.desc()).limit(500)))
    return render(request, "tickets.html", tickets=rows, status=status, type=type, q="")


@router.get("/tickets/new")
def new_ticket_form(
    request: Request, principal: Annotated[Principal, Depends(customer_only)], follow_up: int = 0
) -> Response:
    limit = portal(request).settings.limits.max_attachment_bytes
    return render(
        request, "ticket_new.html", follow_up=follow_up or "", values={}, file_limit=limit
    )


@router.post("/tickets/new", dependencies=[Csrf])
def new_ticket(
    request: Request,
    principal: Annotated[Principal, Depends(customer_only)],
    subject: Short,
    body: Text,
    type: Short,
    files: uploads.Files,
    follow_up: Short = "",
) -> Response:
    p = portal(request)
    values = {"subject": subject, "body": body, "type": type}
    # Said again on the form when something is refused: the typed words come back, and
    # ``refused`` names the file and why (a browser cannot refill a file input).
    limit = p.settings.limits.max_attachment_bytes
    again: dict[str, Any] = {"values": values, "follow_up": follow_up, "file_limit": limit}
    earlier = int(follow_up) if follow_up.isdigit() and int(follow_up) <= MAX_NUMBER else None
    try:
        attachments = uploads.read_files(files, p.settings)
        with p.store.transaction() as session:
            if (
                earlier is not None
                and access.customer_ticket(session, principal.email, earlier) is None
            ):
                earlier = None  # only a ticket this customer can see may be referred to
            new = opening.typed_ticket(
                requester=principal.email,
                subject=subject,
                body=body,
                via="portal",
                type_=type,
                follow_up_of=earlier,
                attachments=attachments,
                settings=p.settings,
            )
            ticket = opening.open_ticket(session, new, settings=p.settings, at=p.now()).ticket
            number = ticket.number
    except FileRefused as exc:
        return render(request, "ticket_new.html", 400, refused=exc, **again)
    except InvalidValue as exc:
        return render(request, "ticket_new.html", 400, error=error_text(request, exc), **again)
    except ActionRefused as exc:
        title, message = N_("You cannot open tickets here"), error_text(request, exc)
        return render(request, "error.html", 403, title=title, message=message)
    return redirect(f"/tickets/{number}?done=new")


@router.get("/tickets/{number:int}")
def ticket_page(
    request: Request, number: int, principal: Annotated[Principal, Depends(signed_in)]
) -> Response:
    check_number(number)
    if principal.is_agent:
        return agent.ticket_page(request, principal, number)
    return customer_ticket_page(request, principal, number)


def customer_ticket_page(
    request: Request,
    principal: Principal,
    number: int,
    status: int = 200,
    error: str = "",
    *,
    values: dict[str, str] | None = None,
    refused: FileRefused | None = None,
) -> Response:
    """The customer's view of ticket ``number``; after a refused reply, its ``error``
    (or the ``refused`` file) and the typed words (``values``) on the reply form."""
    p = portal(request)
    with p.store.transaction() as session:
        ticket = access.customer_ticket(session, principal.email, number)
        shown = TicketMessage.direction.not_in(INTERNAL_DIRECTIONS)
        supplier_view = False
        if ticket is None:
            # A supplier's contact: the supplier side only, never the customer's.
            ticket = access.supplier_ticket(session, principal.email, number)
            shown, supplier_view = TicketMessage.direction.in_(SUPPLIER_DIRECTIONS), True
        if ticket is None:
            raise HTTPException(404, N_("There is no such ticket."))
        messages = list(
            session.scalars(
                select(TicketMessage)
                .where(TicketMessage.ticket_id == ticket.id, shown)
                .options(selectinload(TicketMessage.attachments))
                .order_by(TicketMessage.id)
            )
        )
        closed = is_closed(ticket.status, p.settings.tickets)
        names = people.ticket_names(session, ticket)
    return render(
        request,
        "ticket.html",
        status,
        ticket=ticket,
        messages=messages,
        people=names,
        closed=closed,
        explanation=CLOSED_EXPLANATION,
        error=error,
        supplier_view=supplier_view,
        values=values or {},
        refused=refused,
        file_limit=p.settings.limits.max_attachment_bytes,
    )


@router.post("/tickets/{number:int}/reply", dependencies=[Csrf])
def reply(
    request: Request,
    number: int,
    principal: Annotated[Principal, Depends(customer_only)],
    body: Text,
    files: uploads.Files,
) -> Response:
    check_number(number)
    p = portal(request)
    try:
        attachments = uploads.read_files(files, p.settings)
        with p.store.transaction() as session:
            if access.customer_ticket(session, principal.email, number) is None:
                raise HTTPException(404, N_("There is no such ticket."))
            messages.customer_reply(
                session,
                settings=p.settings,
                number=number,
                author=principal.email,
                body=body,
                at=p.now(),
                attachments=attachments,
            )
    except ActionRefused:
        return render(
            request,
            "error.html",
            409,
            title=N_("This ticket is closed"),
            message=CLOSED_EXPLANATION,
            action=(f"/tickets/new?{urlencode({'follow_up': number})}", N_("Open a new ticket")),
        )
    except FileRefused as exc:
        kept = {"body": body}
        return customer_ticket_page(request, principal, number, 400, values=kept, refused=exc)
    except InvalidValue as exc:
        error, kept = error_text(request, exc), {"body": body}
        return customer_ticket_page(request, principal, number, 400, error, values=kept)
    return redirect(f"/tickets/{number}?done=reply#latest")


@router.get("/tickets/{number:int}/attachments/{attachment_id:int}")
def attachment(
    request: Request,
    number: int,
    attachment_id: int,
    principal: Annotated[Principal, Depends(signed_in)],
) -> Response:
    check_number(number)
    if attachment_id > MAX_NUMBER:
        raise HTTPException(404, N_("There is no such file."))
    return attachment_response(portal(request), principal, number, attachment_id)
