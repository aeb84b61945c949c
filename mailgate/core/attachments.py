"""Attachments: collected from the MIME tree with names safe to show and save,
and Outlook's winmail.dat unpacked into the files inside it."""

from __future__ import annotations

import email.utils
import hashlib
import mimetypes
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any

from tnefparse import TNEF

from mailgate.core.errors import InvalidValue
from mailgate.core.settings import LimitsSettings

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*\\/]+')
_MAX_NAME = 200
_BODY_TYPES = ("text/plain", "text/html")
# Names for parts that carry none, by what they are (RFC 3464 report parts included).
_NAMES_BY_TYPE = {
    "message/delivery-status": "delivery-status.txt",
    "text/rfc822-headers": "returned-headers.txt",
    "message/disposition-notification": "disposition-notification.txt",
}


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    content: bytes | None
    content_id: str = ""
    inline: bool = False
    omitted: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content or b"").hexdigest()


def sanitize_filename(name: str, index: int) -> str:
    """A file name with no directory part, control or reserved characters; never empty.

    Path traversal (``../../etc/passwd``, ``C:\\x``) keeps only the last component;
    invisible format characters (bidi overrides) are dropped.
    """
    name = unicodedata.normalize("NFC", name)
    # Format characters (bidi overrides such as U+202E, zero-width ones) make
    # "\u202etxt.exe" display as "exe.txt": dropped.
    name = "".join(c for c in name if unicodedata.category(c) != "Cf")
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


def collect_attachments(
    message: Message, *, limits: LimitsSettings, decode_name: Callable[[Any], str]
) -> tuple[tuple[Attachment, ...], list[str]]:
    """Every part that is not body text, in MIME order. An attached message
    (``message/rfc822``) is one ``.eml`` attachment, not opened further."""
    out: list[Attachment] = []
    defects: list[str] = []
    for part in _leaves(message):
        content_type = part.get_content_type()
        raw_name = _raw_filename(part)
        name = decode_name(raw_name) if raw_name else ""
        disposition = (part.get_content_disposition() or "").lower()
        if content_type in _BODY_TYPES and not name and disposition != "attachment":
            continue
        data = _content(part)
        if data is None:
            defects.append(f"AttachmentDefect: part {content_type} has an undecodable payload")
            data = b""
        if not name:
            name = _name_for(part, content_type, decode_name)
        filename = sanitize_filename(name, len(out) + 1)
        if content_type == "application/ms-tnef" or filename.lower() == "winmail.dat":
            unpacked = unpack_tnef(data)
            if unpacked is not None:
                for inner_name, inner_type, inner in unpacked:
                    inner_file = sanitize_filename(inner_name, len(out) + 1)
                    out.append(_capped(inner_file, inner_type, inner, limits=limits))
                continue
            defects.append(f"TNEFDefect: {filename} could not be unpacked; kept as is")
        content_id = str(part.get("content-id") or "").strip().strip("<>")
        inline = bool(content_id) and disposition != "attachment"
        out.append(
            _capped(
                filename, content_type, data, limits=limits, content_id=content_id, inline=inline
            )
        )
    return tuple(out), defects


def _raw_filename(part: Message) -> str:
    """The file name as sent, 8-bit bytes still undecoded (``get_filename`` would
    replace them), so the caller can decode them with the message's charsets."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = next((v for k, v in part.raw_items() if k.lower() == header), "")
        if any("\udc80" <= ch <= "\udcff" for ch in raw):
            # Raw 8-bit bytes: the email package would turn them into U+FFFD here.
            match = re.search(param + r'\s*=\s*"([^"]*)"|' + param + r"\s*=\s*([^;\s]+)", raw, re.I)
            if match:
                return match.group(1) or match.group(2)
        value = part.get_param(param, header=header)
        if isinstance(value, tuple):  # RFC 2231: charset'language'value
            return email.utils.collapse_rfc2231_value(value)
        if value:
            return str(value)
    return ""


def _leaves(part: Message) -> Iterator[Message]:
    if part.get_content_type() == "message/rfc822":
        yield part
        return
    if part.is_multipart():
        for child in part.get_payload():
            if isinstance(child, Message):
                yield from _leaves(child)
        return
    yield part


def _content(part: Message) -> bytes | None:
    if part.get_content_type() == "message/rfc822":
        inner = _attached_message(part)
        return inner.as_bytes() if inner is not None else None
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken transfer encoding is a defect, not a crash
        return None
    return payload if isinstance(payload, bytes) else None


def _attached_message(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def _name_for(part: Message, content_type: str, decode_name: Callable[[Any], str]) -> str:
    """A readable, deterministic name for a part that has none."""
    if content_type == "message/rfc822":
        inner = _attached_message(part)
        subject = decode_name(inner.get("subject")) if inner is not None else ""
        return f"{subject or 'message'}.eml"
    if content_type in _NAMES_BY_TYPE:
        return _NAMES_BY_TYPE[content_type]
    stem = "image" if content_type.startswith("image/") else "file"
    return stem + (mimetypes.guess_extension(content_type) or "")


def _capped(
    filename: str,
    content_type: str,
    data: bytes,
    *,
    limits: LimitsSettings,
    content_id: str = "",
    inline: bool = False,
) -> Attachment:
    if len(data) > limits.max_attachment_bytes:
        return Attachment(
            filename,
            content_type,
            len(data),
            None,
            content_id,
            inline,
            omitted=f"over limits.max_attachment_bytes ({limits.max_attachment_bytes})",
        )
    return Attachment(filename, content_type, len(data), data, content_id, inline)


# Why a file a person attached to a typed message (portal, API) is refused. Mail's
# attachments over a limit are kept without their content (``_capped``): the sender is
# gone. A person at a form is there to hear it and choose again, so theirs are refused.
EMPTY = "empty"
TOO_LARGE = "too_large"  # over limits.max_attachment_bytes on its own
TOO_MUCH = "too_much"  # with the files before it, over smtp.max_message_bytes
TOO_MANY = "too_many"  # more files than limits.max_parts
# English for the API and the CLI; the portal words a refusal itself (templates/web/
# _files.html), with the limit in the reader's units.
_REFUSALS = {
    EMPTY: "the file %(name)r is empty",
    TOO_LARGE: "the file %(name)r is larger than %(limit)s bytes, the most one file may be "
    "(limits.max_attachment_bytes)",
    TOO_MUCH: "with the file %(name)r the files are larger than %(limit)s bytes together, "
    "the most one message may carry (smtp.max_message_bytes)",
    TOO_MANY: "the file %(name)r is one too many: a message carries at most %(limit)s files "
    "(limits.max_parts)",
}


class FileRefused(InvalidValue):
    """A file attached to a typed message, refused: ``name`` as the person gave it (the
    name they will look for), ``reason`` (EMPTY, TOO_LARGE, TOO_MUCH, TOO_MANY) and the
    ``limit`` it broke (bytes, or files for TOO_MANY). The portal words it itself."""

    def __init__(self, name: str, reason: str, limit: int = 0) -> None:
        super().__init__(_REFUSALS[reason], name=name, limit=limit)
        self.name, self.reason, self.limit = name, reason, limit


def check_typed_file(
    name: str,
    size: int,
    *,
    index: int,
    before: int,
    limits: LimitsSettings,
    max_message_bytes: int,
) -> None:
    """Refuse file number ``index`` (from 1) of a typed message, ``size`` bytes after
    ``before`` bytes of the files ahead of it, when it breaks a limit of mail: at most
    limits.max_parts of them, each within limits.max_attachment_bytes, all together
    within smtp.max_message_bytes. An empty file is refused too: nothing to attach."""
    if index > limits.max_parts:
        raise FileRefused(name, TOO_MANY, limits.max_parts)
    if size <= 0:
        raise FileRefused(name, EMPTY)
    if size > limits.max_attachment_bytes:
        raise FileRefused(name, TOO_LARGE, limits.max_attachment_bytes)
    if before + size > max_message_bytes:
        raise FileRefused(name, TOO_MUCH, max_message_bytes)


def typed_attachments(
    files: Iterable[Attachment], *, limits: LimitsSettings, max_message_bytes: int
) -> tuple[Attachment, ...]:
    """``files`` a person attached to a typed message, as they are stored: each checked
    (``check_typed_file``, in order) and named as safely as mail's (``sanitize_filename``).
    Checking again what a channel checked while reading is harmless: names stay safe."""
    out: list[Attachment] = []
    before = 0
    for index, file in enumerate(files, 1):
        content = file.content or b""
        check_typed_file(
            file.filename,
            len(content),
            index=index,
            before=before,
            limits=limits,
            max_message_bytes=max_message_bytes,
        )
        before += len(content)
        name = sanitize_filename(file.filename, index)
        kind = file.content_type or "application/octet-stream"
        out.append(Attachment(name, kind, len(content), content))
    return tuple(out)
