"""A port for a test's own server, chosen below the kernel's ephemeral range.

Port 0 hands out a port from the ephemeral range, the same range every outgoing
connection takes its local port from. A test server that is stopped and started again
on its port (an outage, a restart) can then find the port taken by some other test
process's client connection in between. A port below that range is never handed to a
client, and picking it at random keeps parallel test processes apart.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Below the ephemeral range (Linux: 32768-60999 by default), above the well-known ports.
_LOW, _HIGH = 20000, 32000


def _below_ephemeral() -> int:
    try:
        first = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _HIGH
    return min(_HIGH, first - 1)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range."""
    high = _below_ephemeral()
    for _ in range(200):
        port = random.randint(_LOW, high)  # noqa: S311 - spreading tests, not secrets
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")
