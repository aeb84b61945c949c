"""The JSON API's request and response bodies; the OpenAPI schema is made from these.

Response fields are the stable names of ``queries.py`` (README "JSON output").
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from mailgate.tickets.activities import MAX_MINUTES, MAX_TEXT
from mailgate.tickets.opening import TYPED_ADDRESS

# No NUL anywhere: PostgreSQL text cannot hold it, and no mail has it.
NO_NUL = r"^[^\x00]*$"
# No NUL, and not blank: at least one character that is not an ASCII space or control
# (the rule tickets.messages.clean_body applies, so schema and server agree).
VISIBLE = r"^[^\x00]*[^\x00-\x20][^\x00]*$"
EMAIL = f"^{TYPED_ADDRESS}$"
# Base64 as RFC 4648 section 4 writes it (padded, no line breaks): exactly what
# web.uploads.decode_files decodes. Empty here; AttachmentIn refuses that, naming the file.
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


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


class AttachmentIn(BaseModel):
    """A file sent with a message, as Zammad's API takes one: its name, its media type and
    its bytes in base64. Held to the limits of a mail's attachments: each file at most
    limits.max_attachment_bytes, all of a message's together at most
    smtp.max_message_bytes, at most limits.max_parts of them (413 names the file over a
    limit). The name is made safe as a mail attachment's is (no folders, no control or
    reserved characters)."""

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(
        default="application/octet-stream",
        max_length=255,
        description="a media type (type/subtype); anything else is stored as "
        "application/octet-stream",
    )
    data: str = Field(
        pattern=BASE64,
        # Stated for clients; checked by _not_empty, so the 422 names the file.
        json_schema_extra={"minLength": 4},
        description="the file's bytes in base64 (RFC 4648 section 4); an empty file is refused",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> AttachmentIn:
        if not self.data:
            raise ValueError(f"the file {self.filename!r} is empty")
        return self


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


class ActivityOut(BaseModel):
    """Time an agent (or integration) logged on the ticket: internal, like a note."""

    at: str | None
    actor: str
    type: str
    minutes: int
    text: str


class TicketDetail(TicketOut):
    participants: list[ParticipantOut]
    messages: list[MessageOut]
    links: list[LinkOut]
    history: list[HistoryOut]
    activities: list[ActivityOut]
    helpers: list[str]  # agents helping besides the owner (the assignee), by email
    departments: list[str]  # teams involved besides the ticket's own
    suppliers: list[str]  # suppliers attached to the ticket, by name


class ActivityIn(BaseModel):
    """Minutes of work of a type from ``tickets.activity_types``, with an internal text."""

    type: str = Field(min_length=1, max_length=64)
    minutes: int = Field(ge=1, le=MAX_MINUTES)
    text: str = Field(default="", max_length=MAX_TEXT, pattern=NO_NUL)


class LinkIn(BaseModel):
    """A link to ticket ``other``, as a kind of ``tickets.link_kinds`` or its reverse."""

    other: int = Field(ge=1, le=2**53)
    kind: str = Field(default="related", min_length=1, max_length=32)


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
    attachments: list[AttachmentIn] = Field(
        default_factory=list, description="files sent with the first message"
    )


class TicketCreated(TicketOut):
    """The ticket just opened, and the files stored with its first message."""

    attachments: list[AttachmentOut]


class ReplyIn(BaseModel):
    """An answer to the requester, from the integration, told by an "agent replied" notice.
    ``status``, when given, moves the ticket there in the same step: both are made or
    neither, and the one notice names the new status."""

    body: str = Field(min_length=1, max_length=100_000, pattern=VISIBLE)
    status: str | None = Field(
        default=None, min_length=1, max_length=64, description="default: the status stays"
    )
    to_supplier: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description=(
            "write to this supplier, attached to the ticket, instead of the requester: "
            "the customer does not see it, each supplier address gets a content-free "
            "notice, the status stays (no status with it)"
        ),
    )
    attachments: list[AttachmentIn] = Field(
        default_factory=list, description="files sent with the message"
    )


class ReplyOut(BaseModel):
    ticket: int
    message_id: int
    status: str
    attachments: list[AttachmentOut] = Field(
        default_factory=list, description="the files stored with the message"
    )


class StatusIn(BaseModel):
    status: str = Field(min_length=1, max_length=64)


class MergeIn(BaseModel):
    """The ticket to merge into: an open one of the same customer account."""

    into: int = Field(ge=1, le=2**53, description="the number of the ticket to merge into")


# A tag: one word, no comma (tickets.fields.set_tags keeps it in lower case).
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s,\x00]+$")]


class TicketPatch(BaseModel):
    """Fields to change; a field left out stays as it is. ``team`` or ``assignee`` given
    as null clears it; ``tags``, ``helpers`` (agents besides the owner),
    ``departments`` (teams besides the ticket's) and ``suppliers`` (attached suppliers,
    by name) replace the ticket's. All changes are made, or, when one is refused, none."""

    status: str | None = Field(default=None, min_length=1, max_length=64)
    priority: str | None = Field(default=None, min_length=1, max_length=64)
    type: str | None = Field(default=None, min_length=1, max_length=64)
    team: str | None = Field(default=None, min_length=1, max_length=128, pattern=NO_NUL)
    assignee: str | None = Field(default=None, max_length=320, pattern=EMAIL)
    tags: list[Tag] | None = Field(default=None, max_length=50)
    helpers: list[Annotated[str, Field(max_length=320, pattern=EMAIL)]] | None = Field(
        default=None, max_length=50
    )
    departments: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, max_length=50
    )
    suppliers: list[Annotated[str, Field(min_length=1, max_length=255)]] | None = Field(
        default=None, max_length=50
    )


# One line: no control character (C0, DEL, C1) nor line or paragraph separator, and not
# blank (the rule tickets.todos.clean_title applies).
ONE_LINE = (
    r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*[^\x00-\x20\x7f-\x9f\u2028\u2029]"
    r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
)


class TodoIn(BaseModel):
    """A to-do on ticket ``ticket``, or standalone. Its title is internal: the one
    reminder its assignee gets when it is overdue points to it, never quotes it."""

    title: str = Field(min_length=1, max_length=500, pattern=ONE_LINE)
    ticket: int | None = Field(
        default=None, ge=1, le=2**53, description="the ticket's number; default: standalone"
    )
    assignee: str | None = Field(
        default=None, max_length=320, pattern=EMAIL, description="an active agent's email"
    )
    due_at: AwareDatetime | None = Field(
        default=None, description="RFC 3339, with its offset; default: no due date"
    )


class TodoOut(BaseModel):
    id: int
    ticket: int | None
    title: str
    assignee: str | None
    due_at: str | None
    overdue: bool
    done_at: str | None
    done_by: str | None
    created_by: str
    created_at: str | None
    reminded_at: str | None
