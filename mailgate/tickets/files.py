"""Files on ticket messages: the rows, and the check every typed message's files get.

Mail's attachments arrive parsed and capped (``core.attachments.collect_attachments``).
A file a person attaches in the portal or the API is held to the same limits and named
as safely, but refused rather than kept without its content
(``core.attachments.typed_attachments``). Each write-side function that stores a typed
message checks its files here, whatever channel read them, so no channel can skip it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from mailgate.core.attachments import Attachment, typed_attachments
from mailgate.core.settings import Settings
from mailgate.db.models import StoredAttachment


def typed_files(settings: Settings, files: Iterable[Attachment]) -> tuple[Attachment, ...]:
    """``files`` attached to a typed message, checked and safely named as they will be
    stored; ``FileRefused`` (an ``InvalidValue``) names the first one over a limit."""
    return typed_attachments(
        files, limits=settings.limits, max_message_bytes=settings.smtp.max_message_bytes
    )


def attach(session: Session, message_id: int, attachments: Iterable[Attachment]) -> None:
    """The rows of ``attachments``, on ticket message ``message_id``: mail's and typed
    messages' alike. They go in with the transaction's next flush."""
    for attachment in attachments:
        session.add(
            StoredAttachment(
                ticket_message_id=message_id,
                filename=attachment.filename,
                content_type=attachment.content_type[:255],
                size=attachment.size,
                sha256=attachment.sha256,
                content_id=attachment.content_id[:255],
                inline=attachment.inline,
                content=attachment.content,
                omitted=attachment.omitted,
            )
        )
