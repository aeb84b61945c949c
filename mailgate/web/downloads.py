"""How an attachment is handed to a browser: as a download, never rendered, except
the raster images a message shows in place (``inline_image_type``).

Pure: header values from a stored file name, content type and bytes.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

# RFC 2045 section 5.1: type "/" subtype, each an RFC 2045 token; parameters are dropped.
_MIME_WORD = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"^\s*({_MIME_WORD})/({_MIME_WORD})\s*(;.*)?$")
FALLBACK_TYPE = "application/octet-stream"


# Image types every browser draws itself, without scripts or fetching anything: these
# alone are shown inside a message. SVG is not one (it is a document that can hold
# script and links), so it stays a download, as do TIFF, BMP, HEIC and the rest.
# Each with the bytes its files start with: a part whose bytes say otherwise is a
# download too, whatever its declared type.
_INLINE_IMAGES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),  # and "WEBP" at offset 8, checked below
}
# Names some mailers give JPEG; the file is served under its registered one.
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}


def _image_kind(stored: str) -> str:
    kind = safe_content_type(stored)
    return _ALIASES.get(kind, kind)


def may_show_inline(stored: str) -> bool:
    """Whether a part of media type ``stored`` may be drawn in its message."""
    return _image_kind(stored) in _INLINE_IMAGES


def inline_image_type(stored: str, content: bytes) -> str | None:
    """The image type to serve ``content`` inline with, when it is a raster image a
    browser may draw (declared so, and its bytes agree); else None: a download."""
    kind = _image_kind(stored)
    starts = _INLINE_IMAGES.get(kind, ())
    if not any(content.startswith(magic) for magic in starts):
        return None
    if kind == "image/webp" and content[8:12] != b"WEBP":
        return None
    return kind


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """``attachment`` (``inline``: ``inline``) with an ASCII ``filename`` and the exact
    name as ``filename*`` (RFC 6266 section 4.3, RFC 8187 encoding), so every browser
    saves a safe name."""
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
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"


def safe_content_type(stored: str) -> str:
    """The stored media type when well formed (lower-cased, without parameters), else
    ``application/octet-stream``."""
    match = _MEDIA_TYPE.match(stored or "")
    if not match:
        return FALLBACK_TYPE
    return f"{match.group(1)}/{match.group(2)}".lower()
