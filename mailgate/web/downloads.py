"""How an attachment is handed to a browser: always as a download, never rendered.

Pure: header values from a stored file name and content type.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

# RFC 2045 section 5.1: type "/" subtype, each an RFC 2045 token; parameters are dropped.
_MIME_WORD = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"^\s*({_MIME_WORD})/({_MIME_WORD})\s*(;.*)?$")
FALLBACK_TYPE = "application/octet-stream"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact name as ``filename*``
    (RFC 6266 section 4.3, RFC 8187 encoding), so every browser saves a safe name."""
    name = "".join(ch for ch in filename if unicodedata.category(ch)[0] != "C").strip()
    name = name.replace("/", "_").replace("\\", "_") or "attachment"
    # Accents come off (é → e); what has no ASCII form becomes "_", keeping the length.
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_name = "".join(
        ch if ch.isascii() else "_" for ch in decomposed if not unicodedata.combining(ch)
    )
    # Quoted-string fallback: no quotes or backslashes to escape, no bare dots for a name.
    ascii_name = re.sub(r'["\\%;]', "_", ascii_name).strip(". ") or "attachment"
    encoded = quote(name, safe="")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"


def safe_content_type(stored: str) -> str:
    """The stored media type when well formed (lower-cased, without parameters), else
    ``application/octet-stream``."""
    match = _MEDIA_TYPE.match(stored or "")
    if not match:
        return FALLBACK_TYPE
    return f"{match.group(1)}/{match.group(2)}".lower()
