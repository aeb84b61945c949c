"""Message-ID lists and reply prefixes, read from header text. Pure."""

from __future__ import annotations

import re

_MSG_ID = re.compile(r"<([^<>\s]+)>")
_REPLY_PREFIX = re.compile(
    r"^\s*((re|aw|sv|vs|antw|ref|rif|r|fw|fwd|wg|tr|rv|enc|odp|res)\s*(\[\d+\])?\s*[:\uff1a]\s*)+",
    re.IGNORECASE,
)


def parse_message_ids(value: str) -> tuple[str, ...]:
    """Every ``<id>`` in a Message-ID, In-Reply-To or References value, in order, once each.

    A bare id without angle brackets (seen from broken clients) is accepted when it is
    the whole value and contains an ``@``.
    """
    ids = _MSG_ID.findall(value)
    if not ids:
        bare = value.strip()
        if "@" in bare and " " not in bare:
            ids = [bare]
    seen: dict[str, None] = {}
    for item in ids:
        seen.setdefault(item[:995], None)
    return tuple(seen)


def strip_reply_prefix(subject: str) -> str:
    """``Re: Fwd: AW: hello`` → ``hello``."""
    return _REPLY_PREFIX.sub("", subject).strip()
