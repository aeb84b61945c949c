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
    """How many well-known header fields start a line in the first lines of ``raw``:
    zero means the bytes are not an email at all."""
    found = 0
    for line in raw.lstrip(b"\r\n").splitlines()[:_SCAN_LINES]:
        if not line.strip():
            break
        if _KNOWN.match(line):
            found += 1
    return found


def repair(raw: bytes) -> tuple[bytes, list[str]]:
    """``raw`` with its header section made parseable, and what was repaired."""
    head, sep, body = _split(raw)
    lines = head.split(b"\n")
    defects: list[str] = []
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


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """Header section, separator, body: split at the first empty line."""
    match = re.search(rb"\r?\n\r?\n", raw)
    if match is None:
        return raw, b"", b""
    return raw[: match.start()], raw[match.start() : match.end()], raw[match.end() :]
