"""Files people attach in the portal (a form's ``files`` input) and in the JSON API
(base64 in the body, as Zammad's API takes them), read no further than the limits.

What is kept or refused is the write side's decision (``tickets.files.typed_files``:
mail's limits and safe names, checked again there whatever the channel). Reading holds
a file to the same limits as it goes (``core.attachments.check_typed_file``): a form's
file over them is refused by the size the form parser counted while it spooled the
upload to a temporary file, or after one byte too many, so no more than the limits
are ever in memory; an API file is refused by its decoded size before it is decoded.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends
from starlette.datastructures import UploadFile
from starlette.requests import Request

from mailgate.core.attachments import Attachment, check_typed_file
from mailgate.core.settings import Settings
from mailgate.web.api_models import AttachmentIn
from mailgate.web.downloads import safe_content_type

FIELD = "files"  # the forms' <input type="file" name="files" multiple>


async def chosen_files(request: Request) -> list[UploadFile]:
    """Dependency: the files of the form's ``files`` input, in order. With none chosen a
    browser still sends one nameless, empty part: that is no file."""
    form = await request.form()
    return [
        value
        for value in form.getlist(FIELD)
        if isinstance(value, UploadFile) and (value.filename or value.size)
    ]


Files = Annotated[list[UploadFile], Depends(chosen_files)]


def read_files(uploads: Sequence[UploadFile], settings: Settings) -> tuple[Attachment, ...]:
    """The chosen files as the write side takes them (names as given: it makes them
    safe). ``FileRefused`` names the first one over a limit; the rest are not read."""
    limits, most = settings.limits, settings.smtp.max_message_bytes
    read: list[Attachment] = []
    before = 0
    for index, upload in enumerate(uploads, 1):
        name = upload.filename or ""
        room = min(limits.max_attachment_bytes, most - before)
        if upload.size is not None and upload.size > room:
            # The parser counted it while spooling it to a temporary file: refused unread.
            data, size = b"", upload.size
        else:
            upload.file.seek(0)
            data = upload.file.read(room + 1)  # one byte more than fits says it does not
            size = len(data)
        check_typed_file(
            name, size, index=index, before=before, limits=limits, max_message_bytes=most
        )
        before += size
        kind = safe_content_type(upload.content_type or "")
        read.append(Attachment(name, kind, len(data), data))
    return tuple(read)


def decode_files(files: Sequence[AttachmentIn], settings: Settings) -> tuple[Attachment, ...]:
    """The API's files as the write side takes them. The schema checked the base64; the
    decoded size is known from its length, so a file over a limit is never decoded."""
    limits, most = settings.limits, settings.smtp.max_message_bytes
    decoded: list[Attachment] = []
    before = 0
    for index, file in enumerate(files, 1):
        size = len(file.data) // 4 * 3 - file.data[-2:].count("=")
        check_typed_file(
            file.filename, size, index=index, before=before, limits=limits, max_message_bytes=most
        )
        data = base64.b64decode(file.data, validate=True)
        before += len(data)
        kind = safe_content_type(file.content_type)
        decoded.append(Attachment(file.filename, kind, len(data), data))
    return tuple(decoded)
