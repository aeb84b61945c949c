"""Helpers for the fault suite's process faults: a restartable `mailgate run` and
process-table look-ups (are its roles still alive?)."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.faults.support import Receiver


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
class MailgateRun(Receiver):
    """A `mailgate run` supervisor (its roles' output on its stderr) that can be
    SIGKILLed or SIGTERMed and started again."""

    role: str = "run"

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
