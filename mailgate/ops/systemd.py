"""systemd's notify protocol (sd_notify(3)): readiness, watchdog pings, stopping.

A datagram to the socket named by ``$NOTIFY_SOCKET``; a no-op when not run by
systemd, so the same code runs under any supervisor or none.
"""

from __future__ import annotations

import os
import socket


def notify(state: str, *, environ: dict[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``); True if sent."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
        except OSError:
            return False
    return True


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of ``$WATCHDOG_USEC``), or None when off."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000
