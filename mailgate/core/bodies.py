"""The readable body of a message: text for rules and agents, sanitized HTML for display.

Bodies are walked the way mail clients show them: in a ``multipart/alternative``
one representation is chosen; in ``mixed`` and ``related`` every inline part is
shown in order (RFC 2046 §5.1.3, §5.1.4), so a text mail with an HTML signature
part keeps both.
"""

from __future__ import annotations

import html as html_lib
from collections.abc import Callable
from email.message import Message

from mailgate.core import html

_ISO_2022_JP_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J")
Decoder = Callable[[bytes, tuple[str, ...]], str]


def extract(message: Message, decode: Decoder) -> tuple[str, str]:
    """(text, sanitized html) of ``message``; ``decode`` turns bytes into text given
    the charsets to try, in order."""
    text_parts = _inline(message, prefer="text/plain", decode=decode)
    html_parts = _inline(message, prefer="text/html", decode=decode)
    text = "\n".join(
        body if kind == "text/plain" else html.to_text(html.sanitize(body))
        for kind, body in text_parts
    )
    markup = "\n".join(
        body if kind == "text/html" else f"<pre>{html_lib.escape(body)}</pre>"
        for kind, body in html_parts
    )
    if not any(kind == "text/html" for kind, _ in html_parts):
        markup = ""
    clean = html.sanitize(markup)
    if not text.strip() and clean:
        text = html.to_text(clean)  # an empty text/plain beside real HTML
    return _tidy(text), clean


def _inline(
    part: Message, *, prefer: str, decode: Callable[[bytes, tuple[str, ...]], str]
) -> list[tuple[str, str]]:
    content_type = part.get_content_type()
    if part.is_multipart():
        children = [c for c in part.get_payload() if isinstance(c, Message)]
        if content_type == "multipart/alternative":
            chosen = _choose(children, prefer)
            return _inline(chosen, prefer=prefer, decode=decode) if chosen is not None else []
        if content_type == "message/rfc822":
            return []  # an attached message is an attachment, not part of this body
        out: list[tuple[str, str]] = []
        for child in children:
            out.extend(_inline(child, prefer=prefer, decode=decode))
        return out
    if content_type not in ("text/plain", "text/html") or _is_attachment(part):
        return []
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload.strip():
        return []
    return [(content_type, decode(payload, _charsets_for(part, payload)))]


def _choose(children: list[Message], prefer: str) -> Message | None:
    """The preferred representation in an alternative, else the richest (last) one."""
    for child in children:
        if child.get_content_type() == prefer:
            return child
    for child in children:  # a nested multipart holding the preferred type
        if child.is_multipart() and any(p.get_content_type() == prefer for p in child.walk()):
            return child
    return children[-1] if children else None


def _is_attachment(part: Message) -> bool:
    return (part.get_content_disposition() or "") == "attachment" or bool(part.get_filename())


def _charsets_for(part: Message, payload: bytes) -> tuple[str, ...]:
    declared = part.get_content_charset()
    if declared in (None, "us-ascii", "ascii") and any(e in payload for e in _ISO_2022_JP_ESCAPES):
        # Japanese mail labelled ASCII or not at all is common; its escapes are unambiguous.
        return ("iso-2022-jp",)
    return (declared,) if declared else ()


def _tidy(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
