"""mail-parser-reply's patterns, compiled once per process, and cheaper searches that
stand in for its two slowest ones (``core.quotes`` uses them). Pure.

The library compiles its patterns for every message it reads (through ``re``'s cache,
which a bulk import's one-off MIME boundary patterns keep evicting them from) and tries
its header and signature patterns at every character of the text. A signature needs a
line that starts with a dash or a known phrase, a reply header a line start, a newline
or a dash; so each is tried only there. The results are those of the library's own
searches (tests/test_replytext.py compares them).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

try:  # the parsed form of a pattern: CPython's own, private, so guarded
    from re import _constants as sre  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a Python that moved them: plain searches
    sre = sre_parse = None

from mailparser_reply.parser import EmailMessage

# The library's signature pattern, as mail-parser-reply 1.36 builds it (``{sent}`` and
# ``{sigs}`` are its per-language phrases; its f-string turns ``{1,3}`` into ``(1, 3)``).
# Any other shape (another version): the library's pattern is searched whole, as before.
_SIGNATURE_SHAPE = (
    r"((\s*^(?:> ?)*(?:[-_]{{2}}\n|- ?\w).*|(\n{{2,}} ?[_-]{{32,}})|"
    r"\s*^(?:> ?)*(?:{sent}) ?(?:(?:[\w.<>:// ]+)|(?:\w+ )(1, 3))$|"
    r"(?<!\A)^(?:> ?)*(?:{sigs}))(.|\s)*)"
)
_FLAGS = re.MULTILINE | re.IGNORECASE | re.UNICODE
# Where an Outlook separator line (32 or more dashes or underscores) may be.
_SEPARATOR_RUN = re.compile(r"[_-]{32}")


@dataclass(frozen=True)
class Patterns:
    """The library's three patterns for a list of languages, and the helpers' patterns."""

    header: re.Pattern[str]
    signature: re.Pattern[str]
    disclaimers: re.Pattern[str]
    # A line where a signature may begin (zero-width, at its start); None: unknown shape.
    signature_line: re.Pattern[str] | None
    # Every place a header match can start at; None: anywhere (not worked out).
    header_start: re.Pattern[str] | None


@functools.lru_cache(maxsize=4)  # one list of languages per process in practice
def patterns(languages: tuple[str, ...]) -> Patterns:
    """The patterns for ``languages``, compiled once (``re.Pattern`` is thread-safe)."""
    library = EmailMessage(text="", languages=list(languages))
    header, signature = library.HEADER_REGEX, library.SIGNATURE_REGEX
    disclaimers = library.DISCLAIMERS_REGEX

    def phrases(key: str) -> str:
        found = (
            library._get_language_regex(language=lang, regex_key=key) for lang in library.languages
        )
        return "|".join(p for p in found if p)

    sent, sigs = phrases("sent_from"), phrases("signatures")
    signature_line = None
    if signature.flags == _FLAGS and signature.pattern == _SIGNATURE_SHAPE.format(
        sent=sent, sigs=sigs
    ):
        # What each alternative needs where its line starts: a dash or underscore (after
        # quote marks, or a space for the separator), or a "sent from" or signature phrase.
        signature_line = re.compile(rf"^(?=(?:> ?)*(?:[-_]|(?:{sent})|(?:{sigs}))| ?[-_])", _FLAGS)
    return Patterns(
        header,
        signature,
        disclaimers,
        signature_line,
        _start_pattern(header),
    )


def signature(found: Patterns, text: str) -> str:
    """What ``found.signature.search(text)`` matches, or ``""``.

    Every alternative of the pattern starts at a line start where ``signature_line``
    matches, or in the whitespace just before it (``\\s*^``, and the newlines in front
    of a separator). So the first match is at the first of those positions where the
    pattern matches; no other position can start one."""
    if found.signature_line is None:
        match = found.signature.search(text)
        return match.group() if match else ""
    tried = 0
    for line in found.signature_line.finditer(text):
        start = line.start()
        first = start
        while first > tried and text[first - 1].isspace():  # str.isspace is re's \s
            first -= 1
        for position in range(max(first, tried), start + 1):
            match = found.signature.match(text, position)
            if match:
                return match.group()
        tried = start + 1
    return ""


def matches(
    pattern: re.Pattern[str], starts: re.Pattern[str] | None, text: str, start: int, end: int
) -> list[re.Match[str]]:
    """``list(pattern.finditer(text, start, end))``, the pattern tried only where
    ``starts`` (``_start_pattern``) says a match can start, not at every character."""
    if starts is None:
        return list(pattern.finditer(text, start, end))
    out: list[re.Match[str]] = []
    position = start
    for place in starts.finditer(text, start, end):
        at = place.start()
        if at < position:
            continue
        match = pattern.match(text, at, end)
        if match is None:
            continue
        if match.end() == at:  # an empty match: finditer's own rules for what follows
            return list(pattern.finditer(text, start, end))
        out.append(match)
        position = match.end()
    return out


def _start_pattern(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """A pattern matching at every place where ``pattern`` can start a match: line
    starts, and characters its alternatives may begin with; None when that is not
    clear from its parsed form (then it is searched as usual)."""
    if sre_parse is None:
        return None
    try:
        starts = _starts(list(sre_parse.parse(pattern.pattern, pattern.flags)))
    except (AttributeError, TypeError, ValueError):  # internals of another shape
        return None
    if starts is None:
        return None
    line, chars = starts
    places = ["^"] if line else []
    if chars:
        places.append("[" + "".join(re.escape(c) for c in sorted(chars)) + "]")
    return re.compile("|".join(places), re.MULTILINE) if places else None


def _starts(items: list[Any]) -> tuple[bool, frozenset[str]] | None:
    """(may start at a line start, the characters it may start with) for a match of the
    parsed sequence ``items``; None when unsure (an empty match, a letter, a class)."""
    if not items:
        return None  # the rest may match empty, anywhere
    (op, av), rest = items[0], items[1:]
    if op in (sre.ASSERT, sre.ASSERT_NOT):  # zero-width: the next item starts the match
        return _starts(rest)
    if op is sre.AT:
        return (True, frozenset()) if av in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING) else None
    if op is sre.LITERAL:
        return _plain([(op, av)])
    if op is sre.IN:
        return _plain(av)
    if op is sre.SUBPATTERN:
        return _starts(list(av[-1]) + rest)
    if op is sre.BRANCH:
        return _union([_starts(list(branch) + rest) for branch in av[1]])
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        low, _, body = av
        through = _starts(list(body) + rest)
        return _union([through, _starts(rest)]) if low == 0 else through
    return None


def _plain(members: list[Any]) -> tuple[bool, frozenset[str]] | None:
    """The characters of a literal or a set of literals, if none has a case (under
    IGNORECASE a letter matches others) and the set is not negated."""
    chars = set()
    for op, av in members:
        if op is not sre.LITERAL:
            return None
        char = chr(av)
        if not char.isascii() or char.isalnum() or char == "_":
            return None
        chars.add(char)
    return False, frozenset(chars)


def _union(found: list[tuple[bool, frozenset[str]] | None]) -> tuple[bool, frozenset[str]] | None:
    if any(item is None for item in found):
        return None
    return (
        any(item[0] for item in found if item is not None),
        frozenset().union(*(item[1] for item in found if item is not None)),
    )


def may_hold_separator(text: str) -> bool:
    """False when ``text`` has no run of 32 dashes or underscores, so the library's
    Outlook-separator substitution cannot change it."""
    # Such a run holds one of these pairs; ``in`` finds them far faster than a pattern.
    if not any(pair in text for pair in ("--", "__", "-_", "_-")):
        return False
    return _SEPARATOR_RUN.search(text) is not None


def windows(text: str, candidate: re.Pattern[str], margin: int) -> Iterator[tuple[int, int]]:
    """Character ranges, each from a line start to a line end (before its newline),
    covering every line where ``candidate`` matches at the start (a MULTILINE ``^``
    pattern) with ``margin`` lines on each side; overlapping or adjacent ranges merged.
    Lazily, in order: a caller that has what it needs stops the search there."""
    current: tuple[int, int] | None = None
    for found in candidate.finditer(text):
        line = found.start()
        first = line
        for _ in range(margin):
            if first == 0:
                break
            first = text.rfind("\n", 0, first - 1) + 1
        last = line - 1
        for _ in range(margin + 1):
            last = text.find("\n", last + 1)
            if last < 0:
                last = len(text)
                break
        if current is not None and first <= current[1] + 1:
            current = (current[0], max(current[1], last))
            continue
        if current is not None:
            yield current
        current = (first, last)
    if current is not None:
        yield current
