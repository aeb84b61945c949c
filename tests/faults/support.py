"""Helpers for the fault and hostile-input suite: the seed, a restartable `mailgate smtp`
process on a fixed loopback port, the ledger of what the database holds, and memory."""

from __future__ import annotations

import os
import random
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import SECRET
from tests.ports import free_port  # noqa: F401 - re-exported for the tests

REPO = Path(__file__).resolve().parents[2]
SEED_ENV = "MAILGATE_FAULT_SEED"
SCALE_ENV = "MAILGATE_FAULT_SCALE"
_MID = re.compile(rb"^Message-ID:\s*<([^>]+)>", re.IGNORECASE | re.MULTILINE)


def fault_seed() -> int:
    """``MAILGATE_FAULT_SEED`` if set, else a fresh random seed; printed for replay."""
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))
    print(f"\n{SEED_ENV}={seed}")
    return seed


def full_scale() -> bool:
    """``MAILGATE_FAULT_SCALE=full`` runs the long version (more messages, more faults);
    anything else, or unset, the reduced version that CI runs."""
    return os.environ.get(SCALE_ENV, "").strip().lower() == "full"


def scaled(reduced: int, full: int) -> int:
    """``reduced`` in the CI version, ``full`` in the long one."""
    return full if full_scale() else reduced


def write_config(
    tmp_path: Path,
    *,
    port: int,
    extra: str = "",
    db_url: str = "",
    broker: str = "embedded",
    queue: str = "",
) -> Path:
    """A config for the processes under test: ``db_url``, else a SQLite file ``m.db``;
    ``queue`` adds keys to ``[queue]``, ``extra`` whole sections after ``[smtp]``."""
    path = tmp_path / "mailgate.toml"
    url = db_url or f"sqlite:///{tmp_path / 'm.db'}"
    path.write_text(
        f'[database]\nurl = "{url}"\n'
        f'[security]\nsecret = "{SECRET}"\n'
        f'[queue]\nbroker = "{broker}"\n{queue}'
        f'[smtp]\nlisten = "127.0.0.1:{port}"\n{extra}'
    )
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def run_mailgate(
    config: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        cwd=config.parent,
        check=False,
    )


@dataclass
class Receiver:
    """A `mailgate smtp` child process (or another ``role`` that logs "listening on" when
    ready) that can be SIGKILLed and started again."""

    config: Path
    port: int = 0
    role: str = "smtp"
    proc: subprocess.Popen[bytes] | None = None
    lines: list[str] = field(default_factory=list)
    starts: int = 0
    reader: threading.Thread | None = None

    def start(self, timeout: float = 60) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailgate", "--config", str(self.config), self.role],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_env(),
            cwd=self.config.parent,
        )
        self.proc = proc
        ready = threading.Event()

        def read() -> None:
            assert proc.stderr is not None
            for raw in proc.stderr:
                line = raw.decode(errors="replace")
                self.lines.append(line)
                if "listening on" in line:
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        assert ready.wait(timeout) and proc.poll() is None, "".join(self.lines[-20:])
        self.starts += 1

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self._reap()

    def _reap(self) -> None:
        assert self.proc is not None
        self.proc.wait(timeout=30)
        if self.reader is not None:
            self.reader.join(timeout=30)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.proc is not None:
            self._reap()


def message_id_of(raw: bytes) -> str:
    found = _MID.search(raw.split(b"\r\n\r\n", 1)[0])
    return found.group(1).decode() if found else ""


@dataclass
class Ledger:
    """What the database holds, per Message-ID, against what was acknowledged."""

    acknowledged: set[str]
    rows: dict[str, list[tuple[str, str]]]  # Message-ID → [(state, outcome)] of inbound rows
    ticket_messages: dict[str, int]  # Message-ID → number of ticket_messages rows

    @property
    def lost(self) -> set[str]:
        return {m for m in self.acknowledged if self.ticket_messages.get(m, 0) == 0}

    @property
    def doubled(self) -> set[str]:
        return {m for m, n in self.ticket_messages.items() if n > 1}

    @property
    def unfinished(self) -> list[tuple[str, str, str]]:
        return [
            (m, state, outcome)
            for m, found in self.rows.items()
            for state, outcome in found
            if state not in ("processed", "quarantined") or not outcome
        ]

    @property
    def redelivered(self) -> int:
        """Extra inbound rows: an MTA retry of a message committed just before a kill."""
        return sum(len(found) - 1 for found in self.rows.values())

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for found in self.rows.values():
            for _, outcome in found:
                counts[outcome] = counts.get(outcome, 0) + 1
        return counts


def read_ledger(db_url: str, acknowledged: set[str]) -> Ledger:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            inbound = conn.execute(sa.text("SELECT raw, state, outcome FROM inbound_messages"))
            rows: dict[str, list[tuple[str, str]]] = {}
            for raw, state, outcome in inbound:
                rows.setdefault(message_id_of(bytes(raw)), []).append((state, outcome))
            counted = conn.execute(
                sa.text("SELECT message_id, count(*) FROM ticket_messages GROUP BY message_id")
            )
            ticket_messages = {str(mid).strip("<>"): int(n) for mid, n in counted}
    finally:
        engine.dispose()
    return Ledger(acknowledged, rows, ticket_messages)


def peak_rss_kib() -> int:
    """This process's peak resident set size so far, KiB (Linux ru_maxrss)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def wait_for(check, timeout: float = 60.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
    return value


def kill_bursts_at(
    config: Path,
    cwd: Path,
    points: list[int],
    progress: Callable[[], int],
    rng: random.Random,
) -> list[int]:
    """For each of ``points``: start `mailgate worker --burst`, SIGKILL it once
    ``progress()`` reached the point (or it ended), a random moment later so the kill
    lands inside a transaction; returns ``progress()`` after each kill."""
    after: list[int] = []
    for point in points:
        worker = subprocess.Popen(
            [sys.executable, "-m", "mailgate", "--config", str(config), "worker", "--burst"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_env(),
            cwd=cwd,
        )
        try:
            wait_for(
                lambda p=point, w=worker: progress() >= p or w.poll() is not None,
                timeout=120,
                what=f"progress {point}",
            )
            time.sleep(rng.uniform(0, 0.02))
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.communicate(timeout=30)
        after.append(progress())
    return after
