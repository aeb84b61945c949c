"""The JSON API's to-dos (issue 22): list, add, mark done; the same write side as the
CLI and the portal (``tickets.todos``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query
from starlette.requests import Request

from mailgate.core.errors import ActionRefused, InvalidValue, NotFound
from mailgate.db import todos as todo_rows
from mailgate.db.store import Store
from mailgate.tickets import todos
from mailgate.web.api import UNAUTHORIZED, Integration, Responses, errors
from mailgate.web.api_models import ErrorOut, TodoIn, TodoOut
from mailgate.web.context import portal

router = APIRouter(prefix="/api", tags=["todos"], responses=UNAUTHORIZED)
BAD: Responses = {400: {"model": ErrorOut, "description": "An unknown agent, or a bad title"}}
NO_TODO: Responses = {404: {"model": ErrorOut, "description": "No such to-do"}}
NO_TICKET: Responses = {404: {"model": ErrorOut, "description": "No such ticket"}}
REFUSED: Responses = {
    409: {"model": ErrorOut, "description": "The ticket is closed; closing is final"}
}
TodoId = Annotated[int, Path(ge=1, le=2**53, description="The to-do's id")]
_LIST_PARAMS = frozenset({"assignee", "ticket", "overdue", "done", "limit"})


@router.get(
    "/todos",
    response_model=list[TodoOut],
    responses={
        400: {"model": ErrorOut, "description": "An unknown or repeated query parameter"},
        403: {"model": ErrorOut, "description": "assignee=me without an agent's token"},
    },
)
def list_todos(
    request: Request,
    caller: Integration,
    assignee: Annotated[
        str | None,
        Query(max_length=320, description="an agent's email; me: the token's own agent"),
    ] = None,
    ticket: Annotated[int | None, Query(ge=1, le=2**53, description="a ticket's number")] = None,
    overdue: Annotated[bool, Query(description="only open ones past their due date")] = False,
    done: Annotated[bool, Query(description="done ones too, after the open ones")] = False,
    limit: Annotated[int, Query(ge=0, le=500, description="0: all, up to 500")] = 100,
) -> list[dict[str, Any]]:
    """Open to-dos by due date (overdue first, those without a date last)."""
    unknown = sorted(set(request.query_params) - _LIST_PARAMS)
    if unknown:
        # A misspelt filter must not silently list everything.
        raise HTTPException(400, f"unknown query parameter(s): {', '.join(unknown)[:200]}")
    repeated = sorted(k for k in _LIST_PARAMS if len(request.query_params.getlist(k)) > 1)
    if repeated:
        raise HTTPException(400, f"query parameter given more than once: {', '.join(repeated)}")
    p = portal(request)
    with p.store.transaction() as session:
        agent_id = None
        if assignee == "me":
            agent_id = caller.actor.agent_id
            if agent_id is None:
                raise HTTPException(403, "assignee=me needs an agent's token")
        elif assignee is not None:
            # Like any filter, an address that is no agent's matches nothing.
            agent_id = todo_rows.agent_id(session, assignee) or -1
        return todo_rows.list_todos(
            session,
            now=p.now(),
            assignee_id=agent_id,
            ticket_number=ticket,
            overdue=overdue,
            include_done=done,
            limit=limit or 500,
        )


@router.post(
    "/todos",
    status_code=201,
    response_model=TodoOut,
    responses={**BAD, **NO_TICKET, **REFUSED},
)
def add_todo(request: Request, caller: Integration, body: TodoIn) -> dict[str, Any]:
    """Add a to-do on a ticket (a history event there) or standalone. Once it is overdue
    and still open, its assignee gets one content-free reminder from the SLA check."""
    p = portal(request)
    now = p.now()
    try:
        with p.store.transaction() as session:
            todo = todos.add_todo(
                session,
                settings=p.settings,
                actor=caller.actor,
                title=body.title,
                at=now,
                number=body.ticket,
                assignee=body.assignee,
                due_at=body.due_at,
            )
            return todo_rows.show_todo(session, todo.id, now=now)
    except (NotFound, ActionRefused, InvalidValue) as exc:
        raise errors(exc) from None


@router.post("/todos/{todo_id}/done", response_model=TodoOut, responses=NO_TODO)
def mark_done(request: Request, caller: Integration, todo_id: TodoId) -> dict[str, Any]:
    """Mark the to-do done; a to-do already done stays as it was (who and when)."""
    p = portal(request)
    now = p.now()
    try:
        with p.store.transaction() as session:
            todos.mark_done(session, todo_id=todo_id, actor=caller.actor, at=now)
            return todo_rows.show_todo(session, todo_id, now=now)
    except NotFound as exc:
        raise errors(exc) from None


def name_the_agents(app: FastAPI, store: Store) -> None:
    """List the active agents as the values ``TodoIn.assignee`` takes in the OpenAPI
    schema, read when the schema is asked for (they change), as the tickets' own
    ``assignee`` is (``api_schema.name_the_choices``, which this wraps)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        with store.transaction() as session:
            agents = todo_rows.active_agents(session)
        schema["components"]["schemas"]["TodoIn"]["properties"]["assignee"]["anyOf"][0]["enum"] = (
            agents
        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
