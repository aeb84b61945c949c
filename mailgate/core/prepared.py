"""A stored message's bytes worked out before any lock is taken: parsed, the new text of
a reply separated, every header field listed for the rules. Pure, and picklable, so a
bulk import can do it in worker processes (``inbound.parse_pool``)."""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import re
from dataclasses import dataclass

from mailgate.core import quotes
from mailgate.core.message import ParsedMessage, ParseRefused, parse
from mailgate.core.settings import Settings

# An empty line (LF, CR or CRLF endings, or a mix): the header section ends at or before it.
_EMPTY_LINE = re.compile(rb"\n[\r\n]|\r\r")


@dataclass(frozen=True)
class Prepared:
    """What processing needs from the raw bytes: the parsed view, the new text of a
    reply and every header field for the rules."""

    parsed: ParsedMessage
    new_text: str
    headers: tuple[tuple[str, str], ...]


def prepare(raw: bytes, settings: Settings) -> Prepared | ParseRefused:
    """Parse ``raw``; the refusal (to quarantine it with) when it cannot be parsed."""
    try:
        parsed = parse(raw, settings.limits)
    except ParseRefused as exc:
        return exc
    return Prepared(parsed, quotes.new_text(parsed.text), all_headers(raw))


def all_headers(raw: bytes) -> tuple[tuple[str, str], ...]:
    """Every header field of ``raw`` as (lower-case name, decoded one-line value).

    The parsed view keeps only the headers the core reads; rules may name any.
    """
    message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
        _header_section(raw)
    )
    out = []
    for name, value in message.items():
        try:
            text = str(email.header.make_header(email.header.decode_header(value)))
        except (ValueError, LookupError, UnicodeError):
            text = str(value)
        out.append((name.lower(), " ".join(text.split())))
    return tuple(out)


def _header_section(raw: bytes) -> bytes:
    """``raw`` up to its first empty line, which ends the header section (or ends after
    it, when a line that is no header field ends it first): the header parser reads the
    same header lines from it, without splitting the whole body into lines it drops."""
    empty = _EMPTY_LINE.search(raw)
    return raw[: empty.end()] if empty else raw
