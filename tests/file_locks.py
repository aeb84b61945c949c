"""Whether a file's flock is held, asked the way another process would ask."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def held_by_anyone(path: Path | str) -> bool:
    """Whether any open file holds a lock (shared or exclusive) on ``path``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the probe's own lock, if it got it
    return False
