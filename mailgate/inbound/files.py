"""Messages from files: one file or stdin, an mbox, or a Maildir."""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mailgate.core.errors import PermanentFailure


@dataclass(frozen=True)
class FileMessage:
    raw: bytes
    # Stable name of where it came from, used to skip it on a second import.
    ref: str


def mbox_messages(path: Path) -> tuple[int, Iterator[FileMessage]]:
    """(count, messages) of an mbox file, in file order, one message in memory at a time."""
    if not path.is_file():
        raise PermanentFailure(f"{path}: no such mbox file")
    if os.linesep == "\n":
        with path.open("rb") as fh:
            toc = mbox_toc(fh)
    else:  # where mailbox.mbox's empty line is "\r\n": its own reading
        toc = _mailbox_toc(path)
    where = path.resolve()

    def generate() -> Iterator[FileMessage]:
        with path.open("rb") as fh:
            for key, (start, stop) in enumerate(toc):
                fh.seek(start)
                raw = fh.read(stop - start)
                # Drop the mbox "From " separator line: it is not part of the message.
                if raw.startswith(b"From "):
                    raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
                yield FileMessage(raw, f"mbox:{where}#{key}")

    return len(toc), generate()


# Read this much at a time to find the separators: the file may be far larger than memory.
TOC_CHUNK = 1 << 20
_SEPARATOR = b"\nFrom "


def mbox_toc(fh: BinaryIO) -> list[tuple[int, int]]:
    """(start, stop) of each message, exactly as ``mailbox.mbox`` finds them (its
    ``_generate_toc``): a message starts at each line that starts with "From " and ends
    before the next one, less the empty line in front of it. Found with ``find`` over
    chunks of the file rather than line by line, which took longer than the rest of
    reading; only a chunk and the offsets are held."""
    starts: list[int] = []
    stops: list[int] = []
    # The separator's "\n" and the byte before it (an empty line ends in two "\n").
    tail = b""
    offset = 0  # of the chunk's first byte in the file
    if fh.read(5) == b"From ":
        starts.append(0)
    fh.seek(0)
    while chunk := fh.read(TOC_CHUNK):
        window = tail + chunk
        base = offset - len(tail)
        found = window.find(_SEPARATOR)
        while found >= 0:
            line = base + found + 1
            if not starts or line > starts[-1]:
                empty_before = found >= 1 and window[found - 1 : found] == b"\n"
                if starts:
                    stops.append(line - 1 if empty_before or line == 1 else line)
                starts.append(line)
            found = window.find(_SEPARATOR, found + 1)
        tail = window[-(len(_SEPARATOR) + 1) :]
        offset += len(chunk)
    if starts:
        ends_empty = tail.endswith(b"\n\n") or (offset == 1 and tail == b"\n")
        stops.append(offset - 1 if ends_empty else offset)
    return list(zip(starts, stops, strict=True))


def _mailbox_toc(path: Path) -> list[tuple[int, int]]:
    box = mailbox.mbox(str(path), create=False)
    try:
        box.keys()
        toc = box._toc  # type: ignore[attr-defined]  # filled by keys(): each (start, stop)
        return [toc[key] for key in sorted(toc)]
    finally:
        box.close()


def maildir_messages(path: Path) -> tuple[int, Iterator[FileMessage]]:
    """(count, messages) of a Maildir's ``new`` and ``cur`` folders."""
    if not (path / "cur").is_dir() and not (path / "new").is_dir():
        raise PermanentFailure(f"{path}: not a Maildir (no cur/ or new/ folder)")
    box = mailbox.Maildir(str(path), factory=None, create=False)
    keys = sorted(box.keys())

    def generate() -> Iterator[FileMessage]:
        for key in keys:
            with box.get_file(key) as fh:
                yield FileMessage(fh.read(), f"maildir:{path.resolve()}#{key}")

    return len(keys), generate()
