"""The JSON API under ``/api``: bearer token per integration, schema at ``/api/openapi.json``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from starlette.requests import Request

from mailgate.core.errors import ActionRefused, InvalidValue, NotFound
from mailgate.core.settings import Settings
from mailgate.db import queries
from mailgate.db.models import Agent, Team
from mailgate.db.store import Store
from mailgate.tickets import changes, fields, messages, opening
from mailgate.tickets.actors import Actor, agent_actor
from mailgate.web import api_tokens
from mailgate.web.api_models import (
    ErrorOut,
    ReplyIn,
    ReplyOut,
    StatusIn,
    TicketCreate,
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


def _errors(exc: Exception) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(404, str(exc))
    if isinstance(exc, ActionRefused):
        return HTTPException(409, str(exc))
    return HTTPException(400, str(exc))


_LIST_PARAMS = frozenset({"status", "type", "limit"})


@router.get("/tickets", response_model=list[TicketOut], responses=BAD)
def list_tickets(
    request: Request,
    caller: Integration,
    status: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=0, le=500, description="0: all, up to 500")] = 50,
) -> list[dict[str, Any]]:
    """Tickets newest first, optionally of one status and type."""
    unknown = sorted(set(request.query_params) - _LIST_PARAMS)
    if unknown:
        # A misspelt filter must not silently list everything.
        raise HTTPException(400, f"unknown query parameter(s): {', '.join(unknown)[:200]}")
    repeated = sorted(k for k in _LIST_PARAMS if len(request.query_params.getlist(k)) > 1)
    if repeated:
        # Which of two values would count? Neither: say so rather than pick one.
        raise HTTPException(400, f"query parameter given more than once: {', '.join(repeated)}")
    p = portal(request)
    with p.store.transaction() as session:
        return queries.list_tickets(session, status=status, type_=type, limit=limit or 500)


@router.post(
    "/tickets",
    status_code=201,
    response_model=TicketOut,
    responses={**BAD, 403: {"model": ErrorOut}},
)
def create_ticket(request: Request, caller: Integration, body: TicketCreate) -> dict[str, Any]:
    """Open a ticket for ``requester``, who gets the usual acknowledgement notice.

    With an agent's token the agent opens it for the customer: intake.policy does not
    apply, and ``team`` and ``assignee`` may be chosen (they win over the rules)."""
    p = portal(request)
    settings = p.settings
    if not caller.staff and (body.team is not None or body.assignee is not None):
        raise HTTPException(403, "only an agent's token may choose the team or the assignee")
    try:
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
            )
            ticket = opening.open_ticket(session, new, settings=settings, at=p.now()).ticket
            number = ticket.number
            assert number is not None
            return _summary(session, number)
    except ActionRefused as exc:
        raise HTTPException(403, str(exc)) from None
    except InvalidValue as exc:
        raise _errors(exc) from None


def _summary(session: Any, number: int) -> dict[str, Any]:
    detail = queries.show_ticket(session, number)
    return {k: detail[k] for k in TicketOut.model_fields}


@router.get("/tickets/{number}", response_model=TicketDetail, responses=NOT_FOUND)
def get_ticket(request: Request, caller: Integration, number: Number) -> dict[str, Any]:
    """One ticket with participants, messages (internal notes included), links and history."""
    p = portal(request)
    try:
        with p.store.transaction() as session:
            return queries.show_ticket(session, number)
    except NotFound as exc:
        raise _errors(exc) from None


@router.post(
    "/tickets/{number}/replies",
    status_code=201,
    response_model=ReplyOut,
    responses={**NOT_FOUND, **BAD, **REFUSED},
)
def post_reply(request: Request, caller: Integration, number: Number, body: ReplyIn) -> ReplyOut:
    """Answer the requester in the integration's name, and with ``status`` move the
    ticket to that status in the same step (leaving a closed status is refused)."""
    p = portal(request)
    try:
        with p.store.transaction() as session:
            message = messages.reply(
                session,
                settings=p.settings,
                number=number,
                actor=caller.actor,
                body=body.body,
                at=p.now(),
                via="api",
                status=body.status,
            )
            return ReplyOut(ticket=number, message_id=message.id, status=message.ticket.status)
    except (NotFound, ActionRefused, InvalidValue) as exc:
        raise _errors(exc) from None


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
            return _summary(session, number)
    except (NotFound, ActionRefused, InvalidValue) as exc:
        raise _errors(exc) from None


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
            return _summary(session, number)
    except (NotFound, ActionRefused, InvalidValue) as exc:
        raise _errors(exc) from None


def name_the_choices(app: FastAPI, settings: Settings, store: Store) -> None:
    """Make the OpenAPI schema list this installation's statuses, types, priorities,
    teams and active agents, so a client (and schemathesis) knows the values the server
    accepts. Teams and agents are read when the schema is asked for: they change."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = build()["components"]["schemas"]
            statuses = [s.name for s in settings.tickets.statuses]
            schemas["StatusIn"]["properties"]["status"]["enum"] = statuses
            schemas["ReplyIn"]["properties"]["status"]["anyOf"][0]["enum"] = statuses
            fields = schemas["TicketCreate"]["properties"]
            fields["type"]["anyOf"][0]["enum"] = list(settings.tickets.types)
            fields["priority"]["anyOf"][0]["enum"] = list(settings.tickets.priorities)
            patch = schemas["TicketPatch"]["properties"]
            patch["status"]["anyOf"][0]["enum"] = statuses
            patch["type"]["anyOf"][0]["enum"] = list(settings.tickets.types)
            patch["priority"]["anyOf"][0]["enum"] = list(settings.tickets.priorities)
        schema = app.openapi_schema
        assert schema is not None  # built just above
        patch = schema["components"]["schemas"]["TicketPatch"]["properties"]
        with store.transaction() as session:
            teams = list(session.scalars(select(Team.name).order_by(Team.name)))
            agents = list(
                session.scalars(select(Agent.email).where(Agent.active).order_by(Agent.email))
            )
        patch["team"]["anyOf"][0]["enum"] = teams
        patch["assignee"]["anyOf"][0]["enum"] = agents
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def allowed_methods(app: FastAPI, path: str) -> str:
    """Every method the API serves at ``path``, for a 405's ``Allow`` (RFC 9110 section
    15.5.6): Starlette names only those of the first route whose path matched."""
    methods: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods.update(m.upper() for m in operations)
    return ", ".join(sorted(methods))
