"""Messages from files: one file or stdin, an mbox, or a Maildir."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailgate.core.errors import PermanentFailure


@dataclass(frozen=True)
class FileMessage:
    raw: bytes
    # Stable name of where it came from, used to skip it on a second import.
    ref: str


def mbox_messages(path: Path) -> tuple[int, Iterator[FileMessage]]:
    """(count, messages) of an mbox file, in file order."""
    if not path.is_file():
        raise PermanentFailure(f"{path}: no such mbox file")
    box = mailbox.mbox(str(path), create=False)
    keys = list(box.keys())

    def generate() -> Iterator[FileMessage]:
        try:
            for key in keys:
                with box.get_file(key) as fh:
                    raw = fh.read()
                # Drop the mbox "From " separator line: it is not part of the message.
                if raw.startswith(b"From "):
                    raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
                yield FileMessage(raw, f"mbox:{path.resolve()}#{key}")
        finally:
            box.close()

    return len(keys), generate()


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
