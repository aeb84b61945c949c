"""The agent's to-dos (issue 22): the "My to-dos" page, and the forms that add a to-do
(standalone, or on the ticket page) and mark one done.

Each form post (with the CSRF token) calls one write-side function (``tickets.todos``),
the same as the CLI and the API, then returns to the page it came from; a refusal or a
wrong value comes back as a page saying why, with the way back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailgate.core import sla
from mailgate.core.errors import ActionRefused, InvalidValue, NotFound
from mailgate.db import todos as todo_rows
from mailgate.tickets import todos
from mailgate.tickets.actors import Actor
from mailgate.web.agent_actions import back_to_ticket
from mailgate.web.auth import Principal, agent_only, require_csrf
from mailgate.web.context import Portal, portal
from mailgate.web.i18n import N_
from mailgate.web.pages import error_text, render

router = APIRouter(include_in_schema=False)
Csrf = Depends(require_csrf)
AgentP = Annotated[Principal, Depends(agent_only)]
Short = Annotated[str, Form(max_length=500)]
MAX_ID = 2**53
MINE = "/agent/todos"

Action = Callable[[Session, Portal, Actor], Any]


def _act(
    request: Request,
    principal: Principal,
    back: tuple[str, str],
    action: Action,
    done: str,
    missing: str = N_("There is no such to-do."),
) -> Response:
    """Run ``action`` in one transaction and return to ``back`` (path, words), which says
    it was ``done`` (a key of pages.DONE); ``missing`` is the 404 page's words when what it
    acts on is not there."""
    p = portal(request)
    actor = Actor(principal.email, principal.email, principal.name, principal.agent_id)
    try:
        with p.store.transaction() as session:
            action(session, p, actor)
    except NotFound:
        raise HTTPException(404, missing) from None
    except ActionRefused as exc:
        message = error_text(request, exc)
        return render(
            request, "error.html", 409, title=N_("Not possible"), message=message, action=back
        )
    except InvalidValue as exc:
        message = error_text(request, exc)
        return render(
            request, "error.html", 400, title=N_("Please check"), message=message, action=back
        )
    return RedirectResponse(f"{back[0]}?done={done}", status_code=303)


def _add(number: int | None, title: str, assignee: str, due: str) -> Action:
    """The add form's fields as one call to the write side; ``due`` in the CLI's words
    (blank: no due date)."""

    def act(s: Session, p: Portal, a: Actor) -> Any:
        now = p.now()
        return todos.add_todo(
            s,
            settings=p.settings,
            actor=a,
            title=title,
            at=now,
            number=number,
            assignee=assignee or None,
            due_at=sla.parse_when(due, now) if due.strip() else None,
        )

    return act


@router.get("/agent/todos")
def my_todos(request: Request, principal: AgentP) -> Response:
    """The signed-in agent's open to-dos, overdue ones first, and a form for a new one."""
    p = portal(request)
    with p.store.transaction() as session:
        # An agent always has an id; without one the list would be everybody's.
        mine = principal.agent_id
        rows = todo_rows.list_todos(session, now=p.now(), assignee_id=mine) if mine else []
        agents = todo_rows.active_agents(session)
    return render(request, "agent_todos.html", todos=rows, agents=agents)


@router.post("/agent/todos", dependencies=[Csrf])
def add_standalone(
    request: Request, principal: AgentP, title: Short, assignee: Short = "", due: Short = ""
) -> Response:
    """A to-do on no ticket; for the signed-in agent unless another one is chosen."""
    back = (MINE, N_("Back to my to-dos"))
    return _act(request, principal, back, _add(None, title, assignee, due), "todos")


@router.post("/agent/tickets/{number:int}/todos", dependencies=[Csrf])
def add_on_ticket(
    request: Request,
    number: int,
    principal: AgentP,
    title: Short,
    assignee: Short = "",
    due: Short = "",
) -> Response:
    if not 0 < number <= MAX_ID:
        raise HTTPException(404, N_("There is no such ticket."))
    back = back_to_ticket(request, number)
    missing = N_("There is no such ticket.")
    return _act(request, principal, back, _add(number, title, assignee, due), "todos", missing)


@router.post("/agent/todos/{todo_id:int}/done", dependencies=[Csrf])
def done(request: Request, todo_id: int, principal: AgentP, back: Short = "") -> Response:
    """Mark a to-do done, then back to its ticket (``back=ticket``) or to my to-dos."""
    if not 0 < todo_id <= MAX_ID:
        raise HTTPException(404, N_("There is no such to-do."))
    p = portal(request)
    target = (MINE, N_("Back to my to-dos"))
    if back == "ticket":
        with p.store.transaction() as session:
            number = todo_rows.ticket_number_of(session, todo_id)
        if number is not None:
            target = back_to_ticket(request, number)
    return _act(
        request,
        principal,
        target,
        lambda s, p, a: todos.mark_done(s, todo_id=todo_id, actor=a, at=p.now()),
        "todo_done",
    )
