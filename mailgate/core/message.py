"""Raw bytes in, a frozen ``ParsedMessage`` out: the one view of an email the core works with."""

from __future__ import annotations

import email.errors
import email.header
import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mailparser

from mailgate.core import bodies, header_repair
from mailgate.core.attachments import Attachment, collect_attachments
from mailgate.core.errors import PermanentFailure
from mailgate.core.headers import parse_message_ids
from mailgate.core.settings import LimitsSettings

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


# An addr-spec-looking token in a From header that RFC 5322 parsing gave up on.
_LOOSE_ADDRESS = re.compile(r"[^\s<>\"(),;:@]+@[\w-]+(\.[\w-]+)+")


class ParseRefused(PermanentFailure):
    """Raised when a message is over a structural limit or the parser cannot read it at all."""


@dataclass(frozen=True)
class Address:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


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
    # sha256 of the body bytes, line endings normalised: the same message relayed by
    # another route (new Received: headers, CRLF or LF) has the same fingerprint.
    content_sha256: str = ""
    # Why the From can be read as more than one sender (``""``: it cannot): then the
    # sender proves nothing, whatever a DMARC verifier said (screening marks it forged).
    sender_ambiguity: str = ""

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
    raw, repairs = header_repair.repair(raw)
    try:
        mail = mailparser.parse_from_bytes(raw)
    except Exception as exc:
        raise ParseRefused(f"parser failed: {type(exc).__name__}: {exc}") from exc
    message = mail.message
    if message is None:
        raise ParseRefused("parser found no message")
    _check_limits(message, limits)
    charsets = _declared_charsets(message)
    attachments, defects = collect_attachments(
        message, limits=limits, decode_name=lambda v: _header_text(v, charsets, fold=False)
    )
    text, clean_html = bodies.extract(
        message, lambda payload, declared: _decode_bytes(payload, (*declared, "utf-8", *charsets))
    )
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
        defects=tuple(repairs) + tuple(_defects(mail)) + tuple(defects),
        content_sha256=content_fingerprint(message, raw),
        sender_ambiguity=_from_ambiguity(message, charsets),
    )


def content_fingerprint(message: Any, raw: bytes) -> str:
    """sha256 of the originator headers and the body bytes, line endings and trailing
    blanks normalised: what stays the same when one message is relayed twice."""
    _, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = [line.rstrip() for line in body.split(b"\n")]
    digest = hashlib.sha256()
    for name in ("from", "to", "cc", "subject", "date", "content-type"):
        digest.update(
            " ".join(str(v) for v in message.get_all(name, [])).encode("utf-8", "replace")
        )
        digest.update(b"\0")
    digest.update(b"\n".join(lines).rstrip())
    return digest.hexdigest()


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


def _addresses(pairs: Any, charsets: tuple[str, ...]) -> tuple[Address, ...]:
    out = []
    for pair in pairs or ():
        name, addr = pair
        addr = str(addr).strip()
        if "@" in addr and not _has_surrogates(addr):
            out.append(Address(repair_text(_one_line(str(name or "")), charsets), addr))
    return tuple(out)


def _sender(mail: Any, charsets: tuple[str, ...]) -> Address | None:
    """Who wrote: the first usable address in From (every From header, since some
    mail repeats it), else Sender, else Reply-To, else Return-Path."""
    message = mail.message
    bare: Address | None = None
    for field in ("from", "sender", "reply-to"):
        raw_values = [v for k, v in message.raw_items() if k.lower() == field]
        for value in raw_values:
            # Raw 8-bit bytes are UTF-8 addresses (RFC 6532) or legacy names: decode
            # them, but leave RFC 2047 words alone until the address is split off.
            text = repair_text(str(value), charsets)
            for name, found in _getaddresses(text):
                addr = found.strip()
                if "@" in addr and " " not in addr and not _has_surrogates(addr):
                    return Address(_header_text(name, charsets), addr)
            loose = _LOOSE_ADDRESS.search(text)
            if loose:
                return Address("", loose.group(0))
            if bare is None and text.strip() and "@" not in text:
                # "MAILER-DAEMON (Mail Delivery System)": a local name, kept for screening.
                local = text.split("(")[0].strip().strip('<>"')
                if local and " " not in local:
                    bare = Address("", local)
    return_path = parse_message_ids(_header_text(message.get("return-path", "")))
    if return_path:
        return Address("", return_path[0])
    return bare


_ADDR_SPEC = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _from_ambiguity(message: Any, charsets: tuple[str, ...]) -> str:
    """Why the From field can be read as another sender than its one address, or ``""``.

    RFC 5322 §3.6 allows one From field; DMARC (RFC 7489 §6.6.1) judges exactly one
    address and says to reject or treat as suspect anything else. Readers disagree on
    the rest, so each of these is ambiguity: two From fields, several addresses or a
    group, a bare CR (some read it as a line break), an address-like display name that
    is not the address."""
    values = [str(v) for k, v in message.raw_items() if k.lower() == "from"]
    if len(values) > 1:
        return f"{len(values)} From fields"
    if not values:
        return ""
    raw = values[0]
    if re.search(r"\r(?!\n)", raw):
        return "a bare CR in the From field"
    text = repair_text(raw, charsets)
    pairs = [(n, a) for n, a in _getaddresses(text) if a or n]
    if len(pairs) > 1:
        return "more than one address in the From field"
    if re.search(r"^[^<\"]*:[^<]*;", text) and "@" in text:
        return "a group in the From field"
    if pairs:
        name = _header_text(pairs[0][0], charsets)
        shown = {m.group(0).lower() for m in _ADDR_SPEC.finditer(name)}
        if shown - {pairs[0][1].strip().lower()}:
            return "an address as the display name in front of another address"
    return ""


def _declared_charsets(message: Any) -> tuple[str, ...]:
    """Charsets the message declares anywhere: the best guesses for raw 8-bit header bytes."""
    found: dict[str, None] = {}
    for part in message.walk():
        charset = part.get_content_charset()
        if charset and charset not in {"us-ascii", "ascii"}:
            found.setdefault(charset, None)
    return tuple(found)


# getaddresses (strict, so it parses twice) runs on the same From in _sender and
# _from_ambiguity, and the same senders write again and again in an import.
@functools.lru_cache(maxsize=256)
def _getaddresses(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(email.utils.getaddresses([text]))


_SURROGATES = re.compile("[\udc80-\udcff]")


def _has_surrogates(value: str) -> bool:
    return not value.isascii() and _SURROGATES.search(value) is not None


def repair_text(value: str, charsets: tuple[str, ...]) -> str:
    """Decode raw 8-bit bytes that arrived unlabelled in a header (RFC 5322 forbids them,
    clients send them anyway): try UTF-8, then the message's declared charsets, then cp1252."""
    if not _has_surrogates(value):
        return value
    return _decode_bytes(value.encode("utf-8", "surrogateescape"), ("utf-8", *charsets))


def _header_text(value: Any, charsets: tuple[str, ...] = (), *, fold: bool = True) -> str:
    """A header value as text, whatever the email package handed back: str, or a
    Header holding RFC 2047 words and raw 8-bit bytes (decoded as ``repair_text`` does)."""
    if value is None:
        return ""
    tidy = _one_line if fold else _no_controls
    if isinstance(value, str) and "=?" not in value:
        return repair_text(tidy(value), charsets)
    try:
        chunks = email.header.decode_header(value)
    except (ValueError, LookupError, email.errors.HeaderParseError):
        return repair_text(tidy(str(value)), charsets)
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
        return tidy(str(email.header.make_header(fixed)))
    except (ValueError, LookupError, UnicodeError):
        return tidy(" ".join(c if isinstance(c, str) else c.decode("utf-8") for c, _ in fixed))


# Labels that mail clients use for a wider charset than they name (as browsers
# treat them, WHATWG Encoding §4.2), or that Python does not know.
_CHARSET_FAMILY = {
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "x-gbk": ("gb18030",),
    "iso-2022-jp": ("iso-2022-jp", "cp932", "euc-jp"),
    "shift_jis": ("cp932",),
    "ks_c_5601-1987": ("cp949",),
    "euc-kr": ("cp949",),
    "iso-8859-1": ("cp1252",),
    "us-ascii": ("cp1252",),
    "tis-620": ("cp874",),
    "unicode-1-1-utf-7": ("utf-7",),
}


def _decode_bytes(raw: bytes, charsets: tuple[str, ...]) -> str:
    expanded = [c for label in charsets for c in _CHARSET_FAMILY.get(label.lower(), (label,))]
    for charset in expanded:
        try:
            return raw.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return raw.decode("cp1252", "replace")


def _no_controls(value: str) -> str:
    return "".join(ch for ch in value if ch >= " " or ch == "\t").strip()


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
