"""What one SMTP session may spend besides a connection slot (issue 19).

Failed AUTH is slowed (a delay before each ``535`` that doubles), capped per connection
and counted per client address across connections within a window, in this receiver
process's memory. A session that moves no mail is capped in idle commands (NOOP, RSET,
HELP, VRFY, EXPN, a repeated EHLO, bad or unknown commands; a stored message starts the
count again, as Postfix's ``smtpd_junk_command_limit``) and in lifetime.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from mailgate.core.settings import SmtpSettings

# A delay never grows past this, so a failed AUTH is always answered well within
# any sane idle_timeout.
MAX_AUTH_DELAY = 30.0
# Client addresses remembered at most; past that the one whose last failure is the
# oldest is forgotten first (memory stays bounded under address rotation).
MAX_CLIENTS = 10_000


@dataclass(frozen=True)
class SessionLimits:
    """The per-session limits of ``[smtp]``, in seconds where they are times."""

    max_idle_commands: int
    max_session_seconds: float
    auth_max_failures: int  # per connection; then 421 and closed
    auth_failure_delay: float  # before the first 535 of a connection, doubling after

    @classmethod
    def from_settings(cls, smtp: SmtpSettings) -> SessionLimits:
        return cls(
            max_idle_commands=smtp.max_idle_commands,
            max_session_seconds=float(smtp.max_session_seconds),
            auth_max_failures=smtp.auth_max_failures_per_connection,
            auth_failure_delay=smtp.auth_failure_delay_ms / 1000,
        )

    def auth_delay(self, failures: int) -> float:
        """Seconds to wait before answering the ``failures``-th failed AUTH (from 1)."""
        return min(self.auth_failure_delay * 2.0 ** max(failures - 1, 0), MAX_AUTH_DELAY)


class AuthFailures:
    """Failed AUTH per client address within a sliding window.

    Used on the receiver's event loop only (no lock). A client with ``limit`` failures
    in the last ``window`` seconds is locked out until the oldest of them is that old;
    a refusal while locked out is not a failure, so the lockout always ends."""

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        # Most recently failed last; each deque holds the last ``limit`` failure times.
        self._failed: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._failed)

    def add(self, client: str) -> None:
        """Record one failed AUTH from ``client``."""
        times = self._failed.pop(client, None) or deque(maxlen=self.limit)
        times.append(self.clock())
        self._failed[client] = times
        while len(self._failed) > self.max_clients:
            del self._failed[next(iter(self._failed))]

    def locked_out(self, client: str) -> bool:
        """True while ``client`` has ``limit`` failures within the window."""
        times = self._failed.get(client)
        if times is None:
            return False
        now = self.clock()
        if now - times[-1] >= self.window:
            del self._failed[client]  # all of them are old
            return False
        return len(times) >= self.limit and now - times[0] < self.window
