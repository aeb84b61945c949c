"""The new text of a reply, apart from the quoted thread and the signature below it.

Uses mail-parser-reply (maintained, multilingual: reply headers such as "On ... wrote:",
"Le ... a écrit :", "El ... escribió:", "Am ... schrieb", Outlook's From: blocks, and
signatures). The full body is always kept beside it; this is only a reading aid. Pure.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from mailparser_reply import EmailReplyParser
from mailparser_reply.parser import EmailMessage, EmailReply

from mailgate.core import quote_patterns

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
# same headers at a fraction of that (tests/test_replytext.py compares the two). Matched
# at each line start (MULTILINE) in one pass: ``.`` and ``$`` keep it inside the line.
_CANDIDATE = re.compile(r"^(?=[>* ]*(?:[^\W\d_]{1,14} ?)?:|.*(?::$|-----))", re.MULTILINE)
# A header spans at most a few lines around its candidate line: "On" up to three lines
# above "wrote:", a field's value one or two lines below its name.
_MARGIN = 4


class _WindowedHeaders:
    """Stands in for the library's header pattern (``_Message.read``): searches only
    the windows of lines around candidate lines, and yields what the pattern's
    ``findall`` over the whole text would (the groups of each match)."""

    def __init__(self, found: quote_patterns.Patterns) -> None:
        self.found = found

    def finditer(self, text: str) -> Iterator[tuple[str, ...]]:
        """The matches' groups one by one: the windows further down are searched only
        if the caller asks for more."""
        for start, end in quote_patterns.windows(text, _CANDIDATE, _MARGIN):
            found = self.found
            for m in quote_patterns.matches(found.header, found.header_start, text, start, end):
                yield tuple(g or "" for g in m.groups())


class _Message(EmailMessage):  # type: ignore[misc]
    """The library's message, reading only as far as its first reply (all that
    ``new_text`` uses) with the patterns compiled once per process."""

    text: str  # the library's field (an annotation only: no dataclass here)

    @property
    def _patterns(self) -> quote_patterns.Patterns:
        return quote_patterns.patterns(tuple(self.languages))

    @property
    def HEADER_REGEX(self) -> _WindowedHeaders:  # the library's name for it
        return _WindowedHeaders(self._patterns)

    def _normalize_text(self) -> None:
        if quote_patterns.may_hold_separator(self.text):
            super()._normalize_text()
            return
        # The library's steps without its separator substitution, which has nothing to
        # change in a text with no run of 32 dashes or underscores.
        text = self.text.replace("\r\n", "\n")
        self.text = "\n".join([line.strip() for line in text.split("\n")])

    def _process_signatures_disclaimers(self, text: str) -> tuple[list[str], str]:
        # Only the first reply is used: the older ones down the thread keep their
        # signatures rather than pay two more patterns over every quoted message.
        if self.replies:
            return [], ""
        found = self._patterns
        disclaimers: list[str] = found.disclaimers.findall(text)
        return disclaimers, quote_patterns.signature(found, text)

    def read(self) -> _Message:
        """The library's ``read`` (mail-parser-reply 1.36), stopped once the first reply
        is found: ``replies[0]`` is what the library gives, later replies are not read."""
        position = current = 0
        previous = ""
        for groups in self.HEADER_REGEX.finditer(self.text):
            for header in (g for g in groups if g):
                position = self.text.find(header, current + 1 if current > 0 else current)
                disclaimers, signatures = self._process_signatures_disclaimers(
                    self.text[current:position]
                )
                reply = EmailReply(
                    headers=previous,
                    content=self.text[current:position],
                    signatures=signatures,
                    disclaimers=disclaimers,
                )
                current = position if position >= 0 else 0
                previous = header
                if reply.content:
                    self.replies.append(reply)
                    return self
        disclaimers, signatures = self._process_signatures_disclaimers(self.text[current:])
        self.replies.append(
            EmailReply(
                headers=previous,
                content=self.text[current:],
                signatures=signatures,
                disclaimers=disclaimers,
            )
        )
        return self


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
