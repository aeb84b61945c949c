"""Attachment names made safe to show and to save, and Outlook's winmail.dat unpacked."""

from __future__ import annotations

import mimetypes
import re
import unicodedata

from tnefparse import TNEF

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*\\/]+')
_MAX_NAME = 200


def sanitize_filename(name: str, index: int) -> str:
    """A file name with no directory part, control or reserved characters; never empty.

    Path traversal (``../../etc/passwd``, ``C:\\x``) keeps only the last component.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name:
        return f"attachment-{index}"
    if len(name) > _MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot else ""
        name = (stem if dot else name)[: _MAX_NAME - len(ext) - 1] + (f".{ext}" if ext else "")
    return name


def unpack_tnef(data: bytes) -> list[tuple[str, str, bytes]] | None:
    """Files inside a TNEF (``winmail.dat``) blob as (name, type, bytes); None if unreadable."""
    try:
        tnef = TNEF(data, do_checksum=False)
    except Exception:  # noqa: BLE001 - tnefparse raises bare errors on bad input
        return None
    files = []
    for attachment in tnef.attachments:
        name = attachment.long_filename() or attachment.name or ""
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        name = str(name).rstrip("\x00")
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        files.append((name, content_type, bytes(attachment.data)))
    return files
