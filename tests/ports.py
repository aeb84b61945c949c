"""A port for a test's own server, chosen below the kernel's ephemeral range.

Port 0 hands out a port from the ephemeral range, the same range every outgoing
connection takes its local port from. A test server that is stopped and started again
on its port (an outage, a restart) can then find the port taken by some other test
process's client connection in between. A port below that range is never handed to a
client, and picking it at random keeps parallel test processes apart.

Apart, but not always: a port one test process chose and has not bound yet (a server
takes seconds to start) looked free to another, and both servers wanted it (CI: a
second RabbitMQ's distribution port, "dist_port_already_used"). So each port is also
claimed for the whole test run, by a file created exclusively in a folder that all of
the run's processes share (``RUN_VARIABLE``, which the run's conftest sets before
pytest-xdist starts its workers): a port is handed out at most once a run. The conftest
removes the folder at the end.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import tempfile
from pathlib import Path

# Below the ephemeral range (Linux: 32768-60999 by default), above the well-known ports.
_LOW, _HIGH = 20000, 32000


def _below_ephemeral() -> int:
    try:
        first = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _HIGH
    return min(_HIGH, first - 1)


RUN_VARIABLE = "MAILGATE_TEST_RUN"


def claims() -> Path:
    """The folder of this test run's claimed ports, shared by its xdist workers."""
    run = os.environ.get(RUN_VARIABLE) or f"pid{os.getpid()}"
    return Path(tempfile.gettempdir()) / f"mailgate-test-ports-{run}"


def _claim(port: int) -> bool:
    """Whether this process is the run's first to want ``port``."""
    folder = claims()
    folder.mkdir(exist_ok=True)
    try:
        os.close(os.open(folder / str(port), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def forget_claims() -> None:
    shutil.rmtree(claims(), ignore_errors=True)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range,
    and that no other test of this run was given."""
    high = _below_ephemeral()
    for _ in range(500):
        port = random.randint(_LOW, high)  # noqa: S311 - spreading tests, not secrets
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if _claim(port):
            return port
    raise RuntimeError("no free port below the ephemeral range")
