"""Build test emails in code, so each test shows the bytes it feeds in."""

from __future__ import annotations

import struct
import zlib
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid


def build(
    *,
    sender: str = "Carol Customer <carol@customer.test>",
    to: str = "support@example.com",
    subject: str = "Printer on fire",
    body: str = "The printer in room 4 is on fire.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    cc: str | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = "Mon, 05 Jan 2026 09:00:00 +0000"
    msg["Message-ID"] = message_id or make_msgid(domain="customer.test")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg.set_content(body)
    # After set_content, which drops any Content-* header set before it.
    for name, value in (headers or {}).items():
        msg[name] = value
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments or []:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(msg)


def png(width: int = 8, height: int = 6, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A real PNG of one colour (RFC 2083 chunks, zlib data), small enough to read in a test."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))  # filter 0 each row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def build_related(*, html: str, images: list[tuple[str, str, bytes, str]], **fields: str) -> bytes:
    """``build`` with its HTML part made multipart/related (RFC 2387) with ``images``, each
    (file name, type, bytes, Content-ID without ``<>``), as mail clients send screenshots."""
    msg = message_from_bytes(build(html=html, **fields), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    html_part = msg.get_body(preferencelist=("html",))
    assert html_part is not None
    for filename, content_type, data, cid in images:
        maintype, _, subtype = content_type.partition("/")
        html_part.add_related(
            data,
            maintype=maintype,
            subtype=subtype,
            cid=f"<{cid}>",
            disposition="inline",
            filename=filename,
        )
    return bytes(msg)
