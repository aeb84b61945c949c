"""Waking the embedded queue's workers in other processes at once.

With the embedded queue the database rows are the queue, and an idle worker looks at
them every ``embedded.POLL_SECONDS``. Under ``mailgate run`` the SMTP receiver and the
worker are separate processes: the receiver commits a message, answers 250, and sends
one datagram to each worker's socket, so the worker processes it at once instead of at
its next look. The receiver then leaves processing to the worker: it no longer competes
with the next messages' acknowledgements for the interpreter and the database's write
lock. With no worker listening (``mailgate smtp`` alone), the receiver processes the
message itself, as before.

The datagram carries nothing: it only says "look now". Sockets are per worker process,
named after the database (``mailgate-<hash>-<pid>.wake`` in the temporary folder), and
readable and writable only by the user running mailgate.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mailgate.core.settings import Settings

log = logging.getLogger(__name__)
# How long a sender trusts its list of worker sockets before looking again.
_LIST_SECONDS = 1.0
_listing: dict[str, tuple[float, list[Path]]] = {}
_listing_lock = threading.Lock()


def _prefix(settings: Settings) -> str:
    digest = hashlib.sha256(settings.database.url.encode()).hexdigest()[:16]
    return f"mailgate-{digest}-"


def _folder() -> Path:
    return Path(tempfile.gettempdir())


class WakeListener:
    """A worker's socket: ``on_wake()`` runs (on a thread of its own) for each datagram."""

    def __init__(self, settings: Settings, on_wake: Callable[[], None]) -> None:
        self.path = _folder() / f"{_prefix(settings)}{os.getpid()}.wake"
        self.on_wake = on_wake
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.path.unlink(missing_ok=True)  # left by a killed process with our pid
        old_umask = os.umask(0o077)
        try:
            self.sock.bind(str(self.path))
        finally:
            os.umask(old_umask)
        self._thread = threading.Thread(target=self._listen, name="mailgate-wake", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while True:
            try:
                self.sock.recv(16)
            except OSError:
                return  # closed
            self.on_wake()

    def close(self) -> None:
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def wake_workers(settings: Settings) -> bool:
    """Tell every worker of this database to look now; True if one was listening."""
    woken = False
    for path in _worker_sockets(settings):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.sendto(b"!", str(path))
            woken = True
        except BlockingIOError:
            woken = True  # its queue is full of wake-ups already: it will look
        except ConnectionRefusedError:
            # That worker is gone (killed before it could remove its socket).
            path.unlink(missing_ok=True)
            _forget(settings, path)
        except FileNotFoundError:
            _forget(settings, path)  # that worker stopped
        except OSError as exc:
            log.debug("cannot wake the worker at %s: %s", path, exc)
        finally:
            sock.close()
    return woken


def listening(settings: Settings) -> bool:
    """Whether a worker of this database listens (as far as the sender's list, at most a
    second old, knows): another process is then writing to the database."""
    return bool(_worker_sockets(settings))


def _worker_sockets(settings: Settings) -> list[Path]:
    prefix = _prefix(settings)
    now = time.monotonic()
    with _listing_lock:
        listed = _listing.get(prefix)
        if listed is None or now - listed[0] > _LIST_SECONDS:
            found = sorted(_folder().glob(f"{prefix}*.wake"))
            listed = (now, found)
            _listing[prefix] = listed
        return list(listed[1])


def _forget(settings: Settings, path: Path) -> None:
    with _listing_lock:
        listed = _listing.get(_prefix(settings))
        if listed is not None and path in listed[1]:
            _listing[_prefix(settings)] = (listed[0], [p for p in listed[1] if p != path])
