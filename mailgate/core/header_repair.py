"""Repairs of broken header sections, made on a copy before parsing; the stored raw
message is never changed. Each repair is reported as a defect.

Real mail breaks RFC 5322 §2.2 in two common ways the stdlib parser cannot
recover from (it ends the header section at the first bad line, so From,
Subject and To fall into the body): a junk line before the first header (a
forwarding banner) and continuation lines that lost their leading white space.
"""

from __future__ import annotations

import re

_FIELD = re.compile(rb"^[\x21-\x39\x3b-\x7e]+[ \t]*:")
_KNOWN = re.compile(
    rb"^(from|to|cc|subject|date|message-id|received|return-path|mime-version|content-type|"
    rb"delivered-to|reply-to|sender|in-reply-to|references|x-[\w-]+)[ \t]*:",
    re.IGNORECASE,
)
_SCAN_LINES = 50


def header_lines_found(raw: bytes) -> int:
    """How many well-known header fields the header block of ``raw`` has, wherever in its
    first lines the block starts (after blank or junk lines): zero means no header block
    can be found, so the bytes are not an email at all."""
    lines = raw.splitlines()[: _SCAN_LINES * 2]
    start = _block_start(lines)
    if start is None:
        return 0
    found = 0
    for line in lines[start:]:
        if not line.strip():
            break
        if _KNOWN.match(line):
            found += 1
    return found


def _block_start(lines: list[bytes]) -> int | None:
    """The index of the header block's first line: the first well-known field within the
    first lines (an mbox ``From `` separator line is left in place)."""
    first = 1 if lines and lines[0].startswith(b"From ") else 0
    return next(
        (i for i in range(first, min(len(lines), first + _SCAN_LINES)) if _KNOWN.match(lines[i])),
        None,
    )


def repair(raw: bytes) -> tuple[bytes, list[str]]:
    """``raw`` with its header section made parseable, and what was repaired."""
    raw, defects = _skip_to_header_block(raw)
    head, sep, body = _split(raw)
    lines = head.split(b"\n")
    start = 0
    if lines and lines[0].startswith(b"From "):
        start = 1  # mbox separator; the stdlib keeps it as the unixfrom
    first = next((i for i in range(start, len(lines)) if _FIELD.match(lines[i])), None)
    if first is None:
        return raw, defects
    if first > start:
        defects.append(
            f"HeaderRepair: dropped {first - start} line(s) before the first header field"
        )
        lines = lines[:start] + lines[first:]
    last_field = max(i for i, line in enumerate(lines) if _FIELD.match(line))
    folded = 0
    for i in range(start, last_field):
        line = lines[i]
        if line[:1] in (b" ", b"\t") or _FIELD.match(line):
            continue
        lines[i] = b" " + line
        folded += 1
    if folded:
        defects.append(f"HeaderRepair: folded {folded} unindented continuation line(s)")
    if not defects:
        return raw, defects
    return b"\n".join(lines) + sep + body, defects


def _skip_to_header_block(raw: bytes) -> tuple[bytes, list[str]]:
    """Drop blank, white-space-only or junk lines (a banner followed by an empty line)
    before the header block: other parsers skip them too, and the stdlib would read the
    first empty line as the end of an empty header section."""
    lines = raw.split(b"\n", _SCAN_LINES * 2)
    start = _block_start(lines)
    first = 1 if lines and lines[0].startswith(b"From ") else 0
    if start is None or start == first:
        return raw, []
    skipped = lines[first:start]
    if any(_FIELD.match(line) for line in skipped):
        return raw, []  # a header field before it: the block starts there (see ``repair``)
    kept = lines[:first] + lines[start:]
    return b"\n".join(kept), [
        f"HeaderRepair: skipped {len(skipped)} line(s) before the header block"
    ]


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """Header section, separator, body: split at the first empty line."""
    match = re.search(rb"\r?\n\r?\n", raw)
    if match is None:
        return raw, b"", b""
    return raw[: match.start()], raw[match.start() : match.end()], raw[match.end() :]
