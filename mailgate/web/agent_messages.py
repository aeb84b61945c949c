"""The agent's messages on a ticket: a reply (to the requester, or to an attached
supplier) and an internal note, each with the files chosen in its form.

Each is an action like the others (``agent_actions.act``): a form post with the CSRF
token, one write-side function, back to the ticket. A file over the limits brings the
ticket page back instead (400), with the typed words still in their form and the
refused file named there: a browser cannot refill a file input, so it must say which
file to choose again, and why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from mailgate.core.attachments import Attachment, FileRefused
from mailgate.core.errors import InvalidValue
from mailgate.tickets import canned_responses as responses
from mailgate.tickets import messages, suppliers
from mailgate.tickets.actors import Actor
from mailgate.web import agent, uploads
from mailgate.web.agent_actions import MAX_NUMBER, Action, AgentP, Csrf, Short, Text, act
from mailgate.web.auth import Principal
from mailgate.web.context import Portal, portal
from mailgate.web.i18n import N_

router = APIRouter(include_in_schema=False)
Attachments = tuple[Attachment, ...]  # the files read, as the write side takes them


@router.post("/agent/tickets/{number:int}/reply", dependencies=[Csrf])
def reply(
    request: Request,
    number: int,
    principal: AgentP,
    files: uploads.Files,
    body: Text = "",
    response: Short = "",
    status: Short = "",
    to_supplier: Short = "",
) -> Response:
    """The typed text, or the chosen canned response; choosing both is refused rather
    than guessing which one the agent meant to send. ``status`` (blank: unchanged) is
    set in the same step, under the same lock, with the reply's one notice.
    ``to_supplier`` (blank: the requester) writes to an attached supplier instead.
    The chosen ``files`` go with whichever it is."""
    then = status or None
    kept = {"reply": body, "response": response, "status": status, "to_supplier": to_supplier}

    def send(attachments: Attachments) -> Action:
        def action(s: Session, p: Portal, a: Actor) -> Any:
            if to_supplier:
                if response or then:
                    raise InvalidValue(
                        "A message to a supplier is typed text, and it does not change the status."
                    )
                return suppliers.reply_to_supplier(
                    s,
                    settings=p.settings,
                    number=number,
                    actor=a,
                    supplier=to_supplier,
                    body=body,
                    at=p.now(),
                    attachments=attachments,
                )
            common: dict[str, Any] = {"settings": p.settings, "number": number, "actor": a}
            common.update(at=p.now(), status=then, attachments=attachments)
            if not response:
                return messages.reply(s, body=body, **common)
            if body.strip():
                raise InvalidValue("Send either the text you typed or a canned response, not both.")
            if response not in responses.names(s):
                # Not a 404: the ticket is there, the response is gone (removed meanwhile).
                raise InvalidValue("There is no canned response %(name)r any more.", name=response)
            return responses.reply(s, name=response, **common)

        return action

    return _with_files(request, principal, number, files, "reply", kept, send)


@router.post("/agent/tickets/{number:int}/note", dependencies=[Csrf])
def note(
    request: Request, number: int, principal: AgentP, body: Text, files: uploads.Files
) -> Response:
    """An internal note, and its files: as internal as the note (no customer sees them,
    nor can download them)."""

    def add(attachments: Attachments) -> Action:
        return lambda s, p, a: messages.note(
            s,
            settings=p.settings,
            number=number,
            actor=a,
            body=body,
            at=p.now(),
            attachments=attachments,
        )

    return _with_files(request, principal, number, files, "note", {"note": body}, add)


def _with_files(
    request: Request,
    principal: Principal,
    number: int,
    files: list[UploadFile],
    form: str,
    kept: dict[str, str],
    action: Callable[[Attachments], Action],
) -> Response:
    """Read the chosen ``files``, then ``act``. A file refused, while read here or by the
    write side, brings back the ticket page with ``kept`` in form ``form``."""
    if not 0 < number <= MAX_NUMBER:
        raise HTTPException(404, N_("There is no such ticket."))

    def again(exc: FileRefused) -> Response:
        return agent.ticket_page(
            request, principal, number, 400, values=kept, refused=exc, refused_form=form
        )

    try:
        attachments = uploads.read_files(files, portal(request).settings)
    except FileRefused as exc:
        return again(exc)
    return act(request, principal, number, action(attachments), refused=again)
