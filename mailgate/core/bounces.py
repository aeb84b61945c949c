"""Which message a bounce reports on: the Message-IDs in a DSN's returned headers.

RFC 3464 §2 (and RFC 6522) put the original message, or only its headers, in the
third part of a multipart/report: ``message/rfc822``, ``text/rfc822-headers`` or
``message/rfc822-headers``. Older MTAs paste the original inline in a text body.
Pure: bytes in, Message-IDs out.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import re

from mailgate.core.headers import parse_message_ids

_RETURNED = {"message/rfc822", "text/rfc822-headers", "message/rfc822-headers"}
_INLINE_ID = re.compile(r"^\s*>?\s*Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_MAX_PARTS = 50


def reported_message_ids(raw: bytes, text: str = "") -> tuple[str, ...]:
    """Message-IDs of the returned original in a bounce, most reliable first."""
    found: dict[str, None] = {}
    if raw:
        try:
            message = email.message_from_bytes(raw, policy=email.policy.compat32)
        except Exception:  # noqa: BLE001 - a bounce too broken to read reports nothing
            message = None
        if message is not None:
            for count, part in enumerate(message.walk()):
                if count > _MAX_PARTS:
                    break
                if part.get_content_type() in _RETURNED:
                    for mid in _ids_in_returned(part):
                        found.setdefault(mid, None)
    for match in _INLINE_ID.finditer(text):
        for mid in parse_message_ids(match.group(1)):
            found.setdefault(mid, None)
    return tuple(found)


def _ids_in_returned(part: email.message.Message) -> tuple[str, ...]:
    payload = part.get_payload()
    if isinstance(payload, list):
        # message/rfc822: the stdlib already parsed the attached message.
        inner = payload[0] if payload else None
        value = inner.get("message-id", "") if isinstance(inner, email.message.Message) else ""
        return parse_message_ids(str(value))
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ()
    headers = email.message_from_bytes(data.split(b"\n\n", 1)[0] + b"\n\n")
    return parse_message_ids(str(headers.get("message-id", "")))
