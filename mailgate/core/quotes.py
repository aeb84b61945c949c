"""The new text of a reply, apart from the quoted thread and the signature below it.

Uses mail-parser-reply (maintained, multilingual: reply headers such as "On ... wrote:",
"Le ... a écrit :", "El ... escribió:", "Am ... schrieb", Outlook's From: blocks, and
signatures). The full body is always kept beside it; this is only a reading aid. Pure.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from mailparser_reply import EmailReplyParser
from mailparser_reply.parser import EmailMessage

# Languages whose reply headers are recognised, whatever the message declares.
LANGUAGES = ("en", "fr", "es", "de", "it", "nl", "sv", "da", "pl")
# The library's signature pattern backtracks over the rest of the text; a reply's new
# text is at the top, so a bounded prefix is enough and keeps time linear in the limit.
MAX_CHARS = 100_000

log = logging.getLogger(__name__)

# Every reply header the library knows contains a line that ends in a colon ("On ...
# wrote:"), starts with a field name and a colon ("From: ...", "> De : ..."), or holds
# a dashed separator ("-----Original Message-----"). Its one big pattern, with IGNORECASE
# and a dozen languages, costs about 0.8 µs per character of the whole body (5 ms on a
# 7 KB reply with a pasted log); run only on a few lines around such lines, it finds the
# same headers at a fraction of that (tests/test_replytext.py compares the two).
_CANDIDATE = re.compile(r"[>* ]*(?:[^\W\d_]{1,14} ?)?:|.*(?::$|-----)")
# A header spans at most a few lines around its candidate line: "On" up to three lines
# above "wrote:", a field's value one or two lines below its name.
_MARGIN = 4


class _WindowedHeaders:
    """Stands in for the library's header pattern: ``findall`` searches only the
    windows of lines around candidate lines, and returns what ``findall`` over the
    whole text would (the groups of each match)."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def findall(self, text: str) -> list[tuple[str, ...]]:
        found: list[tuple[str, ...]] = []
        for start, end in _windows(text):
            found += [
                tuple(g or "" for g in m.groups()) for m in self.pattern.finditer(text, start, end)
            ]
        return found


def _windows(text: str) -> list[tuple[int, int]]:
    """Character ranges, each from a line start to a line end, covering every candidate
    line with ``_MARGIN`` lines on each side; overlapping ranges merged."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    ranges: list[tuple[int, int]] = []
    for i, line in enumerate(lines):
        if not _CANDIDATE.match(line):
            continue
        first, last = max(0, i - _MARGIN), min(len(lines) - 1, i + _MARGIN)
        if ranges and first <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], last)
        else:
            ranges.append((first, last))
    # The end of a window is the end of a line (before its newline), so ``$`` matches
    # there only where it would in the whole text.
    return [(starts[first], starts[last + 1] - 1) for first, last in ranges]


class _Message(EmailMessage):  # type: ignore[misc]
    @property
    def HEADER_REGEX(self) -> Any:  # the library's name for it
        return _WindowedHeaders(super().HEADER_REGEX)

    def _process_signatures_disclaimers(self, text: str) -> tuple[list[str], str]:
        # Only the first reply is used: the older ones down the thread keep their
        # signatures rather than pay two more patterns over every quoted message.
        if self.replies:
            return [], ""
        result: tuple[list[str], str] = super()._process_signatures_disclaimers(text)
        return result


class _Parser(EmailReplyParser):  # type: ignore[misc]
    def read(self, text: str) -> EmailMessage:
        return _Message(text=text, languages=list(self.languages)).read()


_parser = _Parser(languages=list(LANGUAGES))


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
