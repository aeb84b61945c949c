"""Raw bytes in, a frozen ``ParsedMessage`` out: the one view of an email the core works with."""

from __future__ import annotations

import base64
import binascii
import email.errors
import email.header
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mailparser

from mailgate import html
from mailgate.attachments import sanitize_filename, unpack_tnef
from mailgate.errors import PermanentFailure
from mailgate.settings import LimitsSettings
from mailgate.threading.headers import parse_message_ids

# Headers screening and threading read; everything else stays only in the raw bytes.
KEPT_HEADERS = frozenset(
    {
        "auto-submitted",
        "x-autoreply",
        "x-autorespond",
        "x-auto-response-suppress",
        "precedence",
        "list-id",
        "list-unsubscribe",
        "return-path",
        "x-mailgate-loop",
        "authentication-results",
        "content-language",
        "thread-index",
        "thread-topic",
        "x-failed-recipients",
        "x-loop",
        "delivered-to",
        "x-original-to",
        "sender",
        "x-priority",
        "importance",
        "content-type",
        "x-mailer",
        "user-agent",
    }
)


class ParseRefused(PermanentFailure):
    """Raised when a message is over a structural limit or the parser cannot read it at all."""


@dataclass(frozen=True)
class Address:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


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


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None
    text: str
    html: str
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...]
    content_type: str
    language: str
    defects: tuple[str, ...]

    def header(self, name: str) -> str:
        """The first kept header called ``name`` (case-insensitive), or ``""``."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key == lowered), "")

    def header_all(self, name: str) -> tuple[str, ...]:
        lowered = name.lower()
        return tuple(value for key, value in self.headers if key == lowered)


def parse(raw: bytes, limits: LimitsSettings) -> ParsedMessage:
    """Parse ``raw`` best-effort. Raises ``ParseRefused`` only when a limit is crossed
    or the parser cannot build a message at all; defects are recorded, not refused."""
    try:
        mail = mailparser.parse_from_bytes(raw)
    except Exception as exc:
        raise ParseRefused(f"parser failed: {type(exc).__name__}: {exc}") from exc
    message = mail.message
    if message is None:
        raise ParseRefused("parser found no message")
    _check_limits(message, limits)
    charsets = _declared_charsets(message)
    attachments, defects = _attachments(mail.attachments, limits, charsets)
    text = "\n\n".join(p for p in mail.text_plain if p.strip())
    markup = "\n".join(mail.text_html)
    clean_html = html.sanitize(markup)
    if not text.strip() and clean_html:
        text = html.to_text(clean_html)
    headers = tuple(
        (name.lower(), _header_text(value))
        for name, value in message.items()
        if name.lower() in KEPT_HEADERS
    )
    language = _header_text(message.get("content-language", "")).split(",")[0].strip()
    return ParsedMessage(
        message_id=next(iter(parse_message_ids(_header_text(message.get("message-id", "")))), ""),
        in_reply_to=parse_message_ids(_header_text(message.get("in-reply-to", ""))),
        references=parse_message_ids(
            " ".join(_header_text(v) for v in message.get_all("references", []))
        ),
        subject=_header_text(message.get("subject"), charsets),
        sender=_sender(mail, charsets),
        to=_addresses(mail.to, charsets),
        cc=_addresses(mail.cc, charsets),
        reply_to=_addresses(mail.reply_to, charsets),
        date=_date(mail.date),
        text=text,
        html=clean_html,
        attachments=attachments,
        headers=headers,
        content_type=message.get_content_type(),
        language=language.split("-")[0].lower()[:8],
        defects=tuple(_defects(mail)) + tuple(defects),
    )


def _check_limits(message: Any, limits: LimitsSettings) -> None:
    header_count = len(message.keys())
    if header_count > limits.max_headers:
        raise ParseRefused(
            f"{header_count} headers, over limits.max_headers ({limits.max_headers})"
        )
    parts = 0
    stack = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        parts += 1
        if parts > limits.max_parts:
            raise ParseRefused(f"more than limits.max_parts ({limits.max_parts}) MIME parts")
        if depth > limits.max_depth:
            raise ParseRefused(f"MIME nesting deeper than limits.max_depth ({limits.max_depth})")
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend((child, depth + 1) for child in payload)


def _attachments(
    items: list[dict[str, Any]], limits: LimitsSettings, charsets: tuple[str, ...]
) -> tuple[tuple[Attachment, ...], list[str]]:
    out: list[Attachment] = []
    defects: list[str] = []
    for index, item in enumerate(items, start=1):
        content = _payload_bytes(item)
        content_type = str(item.get("mail_content_type") or "application/octet-stream").lower()
        filename = sanitize_filename(repair_text(str(item.get("filename") or ""), charsets), index)
        if content is not None and (
            content_type == "application/ms-tnef" or filename.lower() == "winmail.dat"
        ):
            unpacked = unpack_tnef(content)
            if unpacked is None:
                defects.append(f"TNEFDefect: {filename} could not be unpacked; kept as is")
            else:
                for inner_name, inner_type, data in unpacked:
                    name = sanitize_filename(inner_name, len(out) + 1)
                    out.append(
                        _capped(filename=name, content_type=inner_type, data=data, limits=limits)
                    )
                continue
        if content is None:
            defects.append(f"AttachmentDefect: {filename} has an undecodable payload")
            content = b""
        content_id = str(item.get("content-id") or "").strip().strip("<>")
        disposition = str(item.get("content-disposition") or "").lower()
        inline = bool(content_id) and not disposition.startswith("attachment")
        out.append(
            _capped(
                filename=filename,
                content_type=content_type,
                data=content,
                content_id=content_id,
                inline=inline,
                limits=limits,
            )
        )
    return tuple(out), defects


def _capped(
    *,
    filename: str,
    content_type: str,
    data: bytes,
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


def _payload_bytes(item: dict[str, Any]) -> bytes | None:
    payload = item.get("payload") or ""
    if item.get("binary"):
        try:
            return base64.b64decode(payload)
        except (binascii.Error, ValueError):
            return None
    return str(payload).encode("utf-8", "surrogateescape")


def _addresses(pairs: Any, charsets: tuple[str, ...]) -> tuple[Address, ...]:
    out = []
    for pair in pairs or ():
        name, addr = pair
        addr = str(addr).strip()
        if "@" in addr and not _has_surrogates(addr):
            out.append(Address(repair_text(_one_line(str(name or "")), charsets), addr))
    return tuple(out)


def _sender(mail: Any, charsets: tuple[str, ...]) -> Address | None:
    """From, else Sender, else Reply-To, else Return-Path: who a reply would go to."""
    for candidate in (mail.from_, mail.sender, mail.reply_to):
        found = _addresses(candidate if isinstance(candidate, list) else (), charsets)
        if found:
            return found[0]
    return_path = parse_message_ids(_header_text(mail.message.get("return-path", "")))
    return Address("", return_path[0]) if return_path else None


def _declared_charsets(message: Any) -> tuple[str, ...]:
    """Charsets the message declares anywhere: the best guesses for raw 8-bit header bytes."""
    found: dict[str, None] = {}
    for part in message.walk():
        charset = part.get_content_charset()
        if charset and charset not in {"us-ascii", "ascii"}:
            found.setdefault(charset, None)
    return tuple(found)


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def repair_text(value: str, charsets: tuple[str, ...]) -> str:
    """Decode raw 8-bit bytes that arrived unlabelled in a header (RFC 5322 forbids them,
    clients send them anyway): try UTF-8, then the message's declared charsets, then cp1252."""
    if not _has_surrogates(value):
        return value
    return _decode_bytes(value.encode("utf-8", "surrogateescape"), ("utf-8", *charsets))


def _header_text(value: Any, charsets: tuple[str, ...] = ()) -> str:
    """A header value as text, whatever the email package handed back: str, or a
    Header holding RFC 2047 words and raw 8-bit bytes (decoded as ``repair_text`` does)."""
    if value is None:
        return ""
    if isinstance(value, str) and "=?" not in value:
        return repair_text(_one_line(value), charsets)
    try:
        chunks = email.header.decode_header(value)
    except (ValueError, LookupError, email.errors.HeaderParseError):
        return repair_text(_one_line(str(value)), charsets)
    fixed: list[tuple[bytes | str, str | None]] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            fixed.append((chunk, charset))
            continue
        if charset in (None, "unknown-8bit"):
            text = _decode_bytes(chunk, ("utf-8", *charsets))
        else:
            text = _decode_bytes(chunk, (charset, "utf-8", *charsets))
        fixed.append((text.encode("utf-8"), "utf-8"))
    try:
        return _one_line(str(email.header.make_header(fixed)))
    except (ValueError, LookupError, UnicodeError):
        return _one_line(" ".join(c if isinstance(c, str) else c.decode("utf-8") for c, _ in fixed))


def _decode_bytes(raw: bytes, charsets: tuple[str, ...]) -> str:
    for charset in charsets:
        try:
            return raw.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return raw.decode("cp1252", "replace")


def _one_line(value: str) -> str:
    return " ".join(value.replace("\x00", "").split())


def _date(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _defects(mail: Any) -> list[str]:
    out: list[str] = []
    for entry in mail.defects or ():
        if isinstance(entry, dict):
            for where, items in entry.items():
                out.extend(f"{where}: {item}" for item in items)
        else:
            out.append(str(entry))
    for name in ("address_header_defects", "date_header_defects"):
        extra = getattr(mail, name, None)
        if extra:
            out.extend(str(item) for item in extra)
    return out[:200]
