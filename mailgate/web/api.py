"""The JSON API under ``/api``: bearer token per integration, schema at ``/api/openapi.json``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, TypeAdapter
from starlette.requests import Request

from mailgate.core.attachments import EMPTY, FileRefused
from mailgate.core.errors import ActionRefused, InvalidValue, NotFound
from mailgate.db import queries, ticket_filters
from mailgate.tickets import changes, fields, messages, opening, suppliers
from mailgate.tickets.actors import Actor, agent_actor
from mailgate.web import api_tokens, uploads
from mailgate.web.api_models import (
    AttachmentOut,
    ErrorOut,
    ReplyIn,
    ReplyOut,
    StatusIn,
    TicketCreate,
    TicketCreated,
    TicketDetail,
    TicketOut,
    TicketPatch,
)
from mailgate.web.context import portal

_bearer = HTTPBearer(auto_error=False, description="A token from `mailgate api-tokens add NAME`.")
Responses = dict[int | str, dict[str, Any]]
UNAUTHORIZED: Responses = {401: {"model": ErrorOut, "description": "No valid bearer token"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such ticket"}}
BAD: Responses = {
    400: {"model": ErrorOut, "description": "An unknown type, status, priority or agent"}
}
REFUSED: Responses = {
    409: {"model": ErrorOut, "description": "The ticket is closed; closing is final"}
}
TOO_LARGE: Responses = {
    413: {
        "model": ErrorOut,
        "description": "An attached file, named in the answer, over limits.max_attachment_bytes; "
        "the files together over smtp.max_message_bytes; or more than limits.max_parts files",
    }
}
Number = Annotated[int, Path(ge=1, le=2**53, description="The ticket's public number")]


@dataclass(frozen=True)
class Caller:
    """Who calls: the token's integration, acting as its agent when it has one."""

    name: str
    actor: Actor
    staff: bool  # an agent's token: staff rights (intake policy, team and assignee)


def integration(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Who the token that came with the request belongs to; 401 without a valid one."""
    p = portal(request)
    if credentials is not None:
        with p.store.transaction() as session:
            found = api_tokens.check(session, credentials.credentials, p.now())
            if found is not None:
                row, agent = found
                if agent is not None:
                    return Caller(row.name, agent_actor(agent), staff=True)
                return Caller(row.name, Actor(label=f"api:{row.name}", name=row.name), False)
    raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})


Integration = Annotated[Caller, Depends(integration)]
router = APIRouter(prefix="/api", tags=["tickets"], responses=UNAUTHORIZED)


def errors(exc: Exception) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(404, str(exc))
    if isinstance(exc, ActionRefused):
        return HTTPException(409, str(exc))
    if isinstance(exc, FileRefused) and exc.reason != EMPTY:
        return HTTPException(413, str(exc))
    return HTTPException(400, str(exc))


_LIST_PARAMS = frozenset(
    {
        "status", "type", "priority", "team", "assignee", "tag", "customer", "due_before",
        "sort", "limit", "q",
    }
)  # fmt: skip
SEARCH_HELP = (
    "Full-text search: tickets whose subject, requester, participants, attachment names "
    'or messages (notes too) contain every word; a "quoted phrase" as written'
)
Filter = Annotated[str | None, Query(max_length=320)]


@router.get("/tickets", response_model=list[TicketOut], responses=BAD)
def list_tickets(
    request: Request,
    caller: Integration,
    status: Annotated[
        str | None,
        Query(
            max_length=64,
            description="A status, a category (new, active, waiting, on_hold, closed), "
            "open, or all (the default)",
        ),
    ] = None,
    type: Filter = None,
    priority: Filter = None,
    team: Annotated[
        str | None, Query(max_length=128, description="The team or a department; none")
    ] = None,
    assignee: Annotated[
        str | None,
        Query(
            max_length=320,
            description="The owner's email; none; me (an agent's token: owned or helped on)",
        ),
    ] = None,
    tag: Filter = None,
    customer: Filter = None,
    due_before: Annotated[
        str | None,
        Query(
            max_length=64,
            description="A follow-up or action-required date before this RFC 3339 time",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    sort: Annotated[
        Literal["created", "updated", "priority", "due"], Query(description="Default: created")
    ] = "created",
    limit: Annotated[int, Query(ge=0, le=500, description="0: all, up to 500")] = 50,
    # A letter or a digit somewhere: what db.search.terms looks for (no 400 for a q the
    # schema allows).
    q: Annotated[
        str | None, Query(max_length=500, pattern=r"[^\W_]", description=SEARCH_HELP)
    ] = None,
) -> list[dict[str, Any]]:
    """Tickets newest first (or by ``sort``), filtered; with ``q``, the tickets of the
    filters that match the search, best first."""
    unknown = sorted(set(request.query_params) - _LIST_PARAMS)
    if unknown:
        # A misspelt filter must not silently list everything.
        raise HTTPException(400, f"unknown query parameter(s): {', '.join(unknown)[:200]}")
    repeated = sorted(k for k in _LIST_PARAMS if len(request.query_params.getlist(k)) > 1)
    if repeated:
        # Which of two values would count? Neither: say so rather than pick one.
        raise HTTPException(400, f"query parameter given more than once: {', '.join(repeated)}")
    p = portal(request)
    try:
        with p.store.transaction() as session:
            view = ticket_filters.TicketFilter(
                status=status,
                priority=priority,
                type=type,
                team=team,
                assignee=assignee,
                tag=tag,
                customer=customer,
                due_before=_date_time("due_before", due_before),
                sort=sort,
                me_id=caller.actor.agent_id,
            )
            return ticket_filters.summaries(
                session, view, p.settings.tickets, limit=limit or 500, query=q
            )
    except InvalidValue as exc:
        raise errors(exc) from None


@router.post(
    "/tickets",
    status_code=201,
    response_model=TicketCreated,
    responses={**BAD, 403: {"model": ErrorOut}, **TOO_LARGE},
)
def create_ticket(request: Request, caller: Integration, body: TicketCreate) -> dict[str, Any]:
    """Open a ticket for ``requester``, who gets the usual acknowledgement notice; the
    ``attachments`` go with its first message, and the answer lists them as stored.

    With an agent's token the agent opens it for the customer: intake.policy does not
    apply, and ``team`` and ``assignee`` may be chosen (they win over the rules)."""
    p = portal(request)
    settings = p.settings
    if not caller.staff and (body.team is not None or body.assignee is not None):
        raise HTTPException(403, "only an agent's token may choose the team or the assignee")
    try:
        files = uploads.decode_files(body.attachments, settings)
        with p.store.transaction() as session:
            new = opening.typed_ticket(
                requester=body.requester,
                subject=body.subject,
                body=body.body,
                via="api",
                requester_name=body.requester_name,
                type_=body.type,
                priority=body.priority,
                actor=caller.actor.label,
                by_staff=caller.staff,
                team=body.team,
                assignee=body.assignee,
                attachments=files,
                settings=settings,
            )
            opened = opening.open_ticket(session, new, settings=settings, at=p.now())
            number = opened.ticket.number
            assert number is not None
            return {**summary(session, number), "attachments": _stored(opened.message)}
    except ActionRefused as exc:
        raise HTTPException(403, str(exc)) from None
    except InvalidValue as exc:
        raise errors(exc) from None


def summary(session: Any, number: int) -> dict[str, Any]:
    """Ticket ``number`` as ``TicketOut`` lists it: what most calls answer with."""
    detail = queries.show_ticket(session, number)
    return {k: detail[k] for k in TicketOut.model_fields}


def _stored(message: Any) -> list[AttachmentOut]:
    """The files stored with ``message``, as ``GET /api/tickets/{number}`` lists them."""
    return [AttachmentOut.model_validate(a, from_attributes=True) for a in message.attachments]


@router.get("/tickets/{number}", response_model=TicketDetail, responses=NOT_FOUND)
def get_ticket(request: Request, caller: Integration, number: Number) -> dict[str, Any]:
    """One ticket with participants, messages (internal notes included), links and history."""
    p = portal(request)
    try:
        with p.store.transaction() as session:
            return queries.show_ticket(session, number)
    except NotFound as exc:
        raise errors(exc) from None


@router.post(
    "/tickets/{number}/replies",
    status_code=201,
    response_model=ReplyOut,
    responses={**NOT_FOUND, **BAD, **REFUSED, **TOO_LARGE},
)
def post_reply(request: Request, caller: Integration, number: Number, body: ReplyIn) -> ReplyOut:
    """Answer the requester in the integration's name, with the files in
    ``attachments``, and with ``status`` move the ticket to that status in the same step
    (leaving a closed status is refused)."""
    p = portal(request)
    try:
        files = uploads.decode_files(body.attachments, p.settings)
        with p.store.transaction() as session:
            if body.to_supplier is not None:
                if body.status is not None:
                    raise ActionRefused("a message to a supplier does not change the status")
                message = suppliers.reply_to_supplier(
                    session,
                    settings=p.settings,
                    number=number,
                    actor=caller.actor,
                    supplier=body.to_supplier,
                    body=body.body,
                    at=p.now(),
                    via="api",
                    attachments=files,
                )
            else:
                message = messages.reply(
                    session,
                    settings=p.settings,
                    number=number,
                    actor=caller.actor,
                    body=body.body,
                    at=p.now(),
                    via="api",
                    status=body.status,
                    attachments=files,
                )
            return ReplyOut(
                ticket=number,
                message_id=message.id,
                status=message.ticket.status,
                attachments=_stored(message),
            )
    except (NotFound, ActionRefused, InvalidValue) as exc:
        raise errors(exc) from None


@router.post(
    "/tickets/{number}/status", response_model=TicketOut, responses={**NOT_FOUND, **BAD, **REFUSED}
)
def change_status(
    request: Request, caller: Integration, number: Number, body: StatusIn
) -> dict[str, Any]:
    """Move the ticket to a configured status; leaving a closed status is refused."""
    p = portal(request)
    try:
        with p.store.transaction() as session:
            changes.change_status(
                session,
                settings=p.settings,
                number=number,
                actor=caller.actor,
                status=body.status,
                at=p.now(),
            )
            return summary(session, number)
    except (NotFound, ActionRefused, InvalidValue) as exc:
        raise errors(exc) from None


@router.patch(
    "/tickets/{number}", response_model=TicketOut, responses={**NOT_FOUND, **BAD, **REFUSED}
)
def patch_ticket(
    request: Request, caller: Integration, number: Number, body: TicketPatch
) -> dict[str, Any]:
    """Change any of status, priority, type, team, assignee and tags at once."""
    p = portal(request)
    # Left out: unchanged. Null: cleared (team, assignee); for the others, unchanged.
    given = body.model_dump(include=body.model_fields_set)
    wanted = {k: v for k, v in given.items() if v is not None or k in ("team", "assignee")}
    try:
        with p.store.transaction() as session:
            fields.apply_fields(
                session,
                settings=p.settings,
                number=number,
                actor=caller.actor,
                fields=wanted,
                at=p.now(),
            )
            return summary(session, number)
    except (NotFound, ActionRefused, InvalidValue) as exc:
        raise errors(exc) from None


_AWARE = TypeAdapter(AwareDatetime)


def _date_time(name: str, value: str | None) -> datetime | None:
    """An RFC 3339 date and time with its offset; a bare number (which pydantic would
    read as a Unix time) is not one."""
    if value is None:
        return None
    try:
        if re.fullmatch(r"[\d.eE+-]+", value):
            raise ValueError(value)
        return _AWARE.validate_python(value)
    except ValueError:
        raise InvalidValue(
            "%(name)s: expected an RFC 3339 date and time, got %(value)r",
            name=name,
            value=value[:64],
        ) from None
