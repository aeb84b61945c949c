"""The JSON API's request and response bodies; the OpenAPI schema is made from these.

Response fields are the stable names of ``queries.py`` (README "JSON output").
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

# No NUL anywhere: PostgreSQL text cannot hold it, and no mail has it.
NO_NUL = r"^[^\x00]*$"
# No NUL, and not blank: at least one character that is not an ASCII space or control
# (the rule tickets.messages.clean_body applies, so schema and server agree).
VISIBLE = r"^[^\x00]*[^\x00-\x20][^\x00]*$"
EMAIL = r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"


class ErrorOut(BaseModel):
    detail: str


class TicketOut(BaseModel):
    number: int
    subject: str
    requester: str
    requester_name: str
    customer: str | None
    status: str
    type: str
    priority: str
    team: str | None
    assignee: str | None
    language: str
    tags: list[str]
    created_at: str | None
    updated_at: str | None
    first_response_at: str | None
    closed_at: str | None
    follow_up_at: str | None
    action_required_at: str | None


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    content_id: str
    inline: bool
    omitted: str


class MessageOut(BaseModel):
    id: int
    direction: str
    from_: str = Field(alias="from")
    from_name: str
    to: list[str]
    cc: list[str]
    subject: str
    body: str
    body_html: str
    message_id: str
    thread_method: str
    after_close: bool
    screening: dict[str, Any]
    created_at: str | None
    defects: list[str]
    attachments: list[AttachmentOut]


class ParticipantOut(BaseModel):
    email: str
    role: str


class LinkOut(BaseModel):
    number: int | None
    kind: str


class HistoryOut(BaseModel):
    at: str | None
    actor: str
    action: str
    field: str
    old: str
    new: str
    detail: dict[str, Any]


class TicketDetail(TicketOut):
    participants: list[ParticipantOut]
    messages: list[MessageOut]
    links: list[LinkOut]
    history: list[HistoryOut]


class TicketCreate(BaseModel):
    """A ticket opened by an integration on behalf of ``requester``. ``team`` and
    ``assignee`` need an agent's token (`mailgate api-tokens add NAME --agent AGENT`)."""

    requester: str = Field(max_length=320, pattern=EMAIL)
    requester_name: str = Field(default="", max_length=255, pattern=NO_NUL)
    subject: str = Field(min_length=1, max_length=500, pattern=VISIBLE)
    body: str = Field(min_length=1, max_length=100_000, pattern=VISIBLE)
    type: str | None = Field(default=None, max_length=64, description="default: defaults.type")
    priority: str | None = Field(
        default=None, max_length=64, description="default: defaults.priority"
    )
    team: str | None = Field(
        default=None, max_length=128, description="default: defaults.team, or the rules'"
    )
    assignee: str | None = Field(
        default=None, max_length=320, description="an agent's email; default: the strategy's"
    )


class ReplyIn(BaseModel):
    """An answer to the requester, from the integration, told by an "agent replied" notice.
    ``status``, when given, moves the ticket there in the same step: both are made or
    neither, and the one notice names the new status."""

    body: str = Field(min_length=1, max_length=100_000, pattern=VISIBLE)
    status: str | None = Field(
        default=None, min_length=1, max_length=64, description="default: the status stays"
    )


class ReplyOut(BaseModel):
    ticket: int
    message_id: int
    status: str


class StatusIn(BaseModel):
    status: str = Field(min_length=1, max_length=64)


# A tag: one word, no comma (tickets.fields.set_tags keeps it in lower case).
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s,\x00]+$")]


class TicketPatch(BaseModel):
    """Fields to change; a field left out stays as it is. ``team`` or ``assignee`` given
    as null clears it; ``tags`` replaces the ticket's tags. All changes are made, or,
    when one is refused, none."""

    status: str | None = Field(default=None, min_length=1, max_length=64)
    priority: str | None = Field(default=None, min_length=1, max_length=64)
    type: str | None = Field(default=None, min_length=1, max_length=64)
    team: str | None = Field(default=None, min_length=1, max_length=128, pattern=NO_NUL)
    assignee: str | None = Field(default=None, max_length=320, pattern=EMAIL)
    tags: list[Tag] | None = Field(default=None, max_length=50)
