"""``mailgate run``: start each role as a child process, restart one that dies with
backoff, and give up (exit non-zero) when one keeps dying, or at once when one exits
with a code a restart cannot cure (a configuration error: a port in use, a bad value, a
missing secret).

Roles run as processes rather than threads so one role's crash, leak or hang
cannot take the others down, and the same role commands scale out unchanged.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mailgate.core.backoff import compute_backoff
from mailgate.ops import systemd
from mailgate.ops.lifeline import pre_exec_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Role:
    name: str
    argv: tuple[str, ...]
    # Added to the role's CPU niceness: background work yields the CPU to the roles
    # someone is waiting on (an SMTP client waits for its 250).
    nice: int = 0


@dataclass(frozen=True)
class RestartPolicy:
    """A role that exits more than ``max_deaths`` times within ``window`` seconds
    is dying repeatedly: the supervisor stops everything and exits non-zero."""

    max_deaths: int = 5
    window: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 30.0


def dying_repeatedly(deaths: Sequence[float], now: float, policy: RestartPolicy) -> bool:
    """Pure: have more than ``max_deaths`` deaths happened within the window before ``now``?"""
    return sum(1 for t in deaths if now - t <= policy.window) > policy.max_deaths


@dataclass
class _Child:
    role: Role
    process: subprocess.Popen[bytes] | None = None
    deaths: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    restart_at: float = 0.0


class Supervisor:
    """Runs roles until SIGTERM or SIGINT (exit 0, after they drain), until one role
    dies repeatedly, or until one exits with one of ``fatal_codes`` (exit 1)."""

    def __init__(
        self,
        roles: Sequence[Role],
        *,
        policy: RestartPolicy = RestartPolicy(),
        stop_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        fatal_codes: frozenset[int] = frozenset(),
    ) -> None:
        self.children = [_Child(role) for role in roles]
        self.policy = policy
        self.stop_timeout = stop_timeout
        self.clock = clock
        self.fatal_codes = fatal_codes
        self.stopping = threading.Event()
        # The role run() gave up on, and its exit code when that was one of fatal_codes
        # (None when it was dying repeatedly).
        self.failed: str | None = None
        self.fatal_code: int | None = None

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stopping.set())

    def run(self) -> int:
        for child in self.children:
            self._start(child)
        systemd.notify("READY=1")
        watchdog = systemd.watchdog_interval()
        next_ping = self.clock()
        failed: str | None = None
        while not self.stopping.is_set():
            now = self.clock()
            if watchdog is not None and now >= next_ping:
                systemd.notify("WATCHDOG=1")
                next_ping = now + watchdog
            failed = self._tend(now)
            if failed:
                break
            self.stopping.wait(0.2)
        systemd.notify("STOPPING=1")
        self._stop_all()
        if failed:
            self.failed = failed
            if self.fatal_code is None:
                log.info("role %s is dying repeatedly; stopped everything", failed)
            return 1
        return 0

    def _tend(self, now: float) -> str | None:
        for child in self.children:
            if child.process is None:
                if now >= child.restart_at:
                    self._start(child)
                continue
            code = child.process.poll()
            if code is None:
                continue
            child.process = None
            child.deaths.append(now)
            if code in self.fatal_codes:
                # It said why on stderr; starting it again would only say it again.
                self.fatal_code = code
                return child.role.name
            if dying_repeatedly(child.deaths, now, self.policy):
                return child.role.name
            recent = sum(1 for t in child.deaths if now - t <= self.policy.window)
            delay = compute_backoff(
                recent, base=self.policy.base_delay, cap=self.policy.max_delay, rand=random.random
            )
            child.restart_at = now + delay
            log.warning("role %s exited with %s; restarting in %.1fs", child.role.name, code, delay)
        return None

    def _start(self, child: _Child) -> None:
        log.info("starting role %s", child.role.name)
        # Its own process group: a terminal's Ctrl-C reaches only the supervisor, which
        # then sends one SIGTERM (a second signal would make a role cut work off). It
        # dies with us: a SIGKILLed supervisor must not leave roles holding the ports.
        # The hook only calls prctl and getppid, which take no lock a thread could hold.
        child.process = subprocess.Popen(  # noqa: S603 - our own argv
            child.role.argv,
            process_group=0,
            preexec_fn=pre_exec_for(os.getpid(), nice=child.role.nice),  # noqa: PLW1509
        )

    def _stop_all(self) -> None:
        running = [c.process for c in self.children if c.process is not None]
        for process in running:
            process.terminate()  # each role drains its work on SIGTERM
        deadline = self.clock() + self.stop_timeout
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                log.error("role pid %s did not stop in time; killing it", process.pid)
                process.kill()
                process.wait()
