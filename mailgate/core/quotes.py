"""The new text of a reply, apart from the quoted thread and the signature below it.

Uses mail-parser-reply (maintained, multilingual: reply headers such as "On ... wrote:",
"Le ... a écrit :", "El ... escribió:", "Am ... schrieb", Outlook's From: blocks, and
signatures). The full body is always kept beside it; this is only a reading aid. Pure.
"""

from __future__ import annotations

import logging

from mailparser_reply import EmailReplyParser

# Languages whose reply headers are recognised, whatever the message declares.
LANGUAGES = ("en", "fr", "es", "de", "it", "nl", "sv", "da", "pl")
# The library's signature pattern backtracks over the rest of the text; a reply's new
# text is at the top, so a bounded prefix is enough and keeps time linear in the limit.
MAX_CHARS = 100_000

_parser = EmailReplyParser(languages=list(LANGUAGES))
log = logging.getLogger(__name__)


def new_text(body: str) -> str:
    """The latest reply in ``body`` without quotes, reply header or signature; the whole
    (stripped) body when nothing separates it, and never more than was there."""
    text = body[:MAX_CHARS]
    if not text.strip():
        return ""
    try:
        message = _parser.read(text)
    except Exception:  # a reading aid must never fail processing
        log.debug("reply text not separated", exc_info=True)
        return body.strip()
    if not message.replies:
        return body.strip()
    latest = message.replies[0].body.strip() or message.replies[0].content.strip()
    return _strip_trailing_quote(latest or body.strip())


def _strip_trailing_quote(text: str) -> str:
    """Drop a quoted block (``>`` lines) running to the end, and the attribution line
    ending in ``:`` just above it: a language-independent net under the library's
    per-language patterns (its Spanish "escribió:" one misses Gmail's wording)."""
    lines = text.split("\n")
    end = len(lines)
    while end and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith(">")):
        end -= 1
    if end == len(lines) or not any(line.lstrip().startswith(">") for line in lines[end:]):
        return text
    if end and lines[end - 1].rstrip().endswith(":"):
        end -= 1
    kept = "\n".join(lines[:end]).strip()
    return kept or text
