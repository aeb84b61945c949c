"""Helpers for the fault suite's process faults: the SMTP client load, a restartable
`mailgate run`, process-table look-ups, and the outbox ledger of notices."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.support import _env


def alive(pid: int) -> bool:
    """Is ``pid`` a live process (not gone, not a zombie waiting to be reaped)?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


@dataclass
class MailgateRun:
    """A `mailgate run` supervisor (its roles' output on its stderr) that can be
    SIGKILLed or SIGTERMed and started again."""

    config: Path
    proc: subprocess.Popen[bytes] | None = None
    lines: list[str] = field(default_factory=list)
    starts: int = 0
    reader: threading.Thread | None = None

    def start(self, timeout: float = 60) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailgate", "--config", str(self.config), "run"],
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

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> list[int]:
        """SIGKILL the supervisor alone; returns the roles it had running."""
        roles = children_of(self.pid)
        assert self.proc is not None
        self.proc.kill()
        self._reap()
        return roles

    def terminate(self, timeout: float) -> int:
        """SIGTERM the supervisor; its exit status (it must exit within ``timeout``)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reap()
        return code

    def _reap(self) -> None:
        assert self.proc is not None
        self.proc.wait(timeout=30)
        if self.reader is not None:
            self.reader.join(timeout=30)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def stop(self) -> None:
        """Teardown: whatever state it is in, leave no process of it behind."""
        if self.proc is None:
            return
        roles = children_of(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        for pid in roles:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._reap()
