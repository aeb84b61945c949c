"""mailgate's own processes in the fault suite: a restartable `mailgate run`, a
long-running `mailgate worker`, process-table look-ups (are its roles still alive?),
and waiting until the work in the database is drained."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tests.faults.support import Receiver, _env, wait_for, write_config


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


@dataclass
class Worker:
    """A long-running `mailgate worker` (not ``--burst``): it must ride out outages
    by itself. Its stderr goes to a file, read at the end."""

    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        """Start it and wait for its start-up line (schema checked, queues chosen)."""
        earlier = len(self.output())  # the log of an earlier start, after a kill
        with self.log.open("ab") as out:
            proc = self.proc = subprocess.Popen(
                [sys.executable, "-m", "mailgate", "--config", str(self.config), "worker"],
                stdout=subprocess.DEVNULL,
                stderr=out,
                env=_env(),
                cwd=self.config.parent,
            )
        wait_for(
            lambda: "mailgate worker:" in self.output()[earlier:] or proc.poll() is not None,
            timeout=timeout,
            what="the worker to start",
        )
        assert proc.poll() is None, f"worker exited {proc.returncode}: {self.output()[-2000:]}"

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no drain, no goodbye."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM and wait: the exit status of a graceful stop."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
                raise AssertionError("worker did not stop within 60 s of SIGTERM") from None
        return int(self.proc.returncode)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def open_work(db_url: str) -> list[tuple[str, int, str, int, str]]:
    """Inbound rows not final and notices pending: (table, id, state, attempts, error)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT 'inbound', id, state, attempts, last_error FROM inbound_messages "
                    "WHERE state NOT IN ('processed', 'quarantined') UNION ALL "
                    "SELECT 'notice', id, state, attempts, last_error FROM notices "
                    "WHERE state = 'pending'"
                )
            )
            return [(t, int(i), s, int(a), str(e)[:200]) for t, i, s, a, e in rows]
    finally:
        engine.dispose()


def wait_drained(db_url: str, worker: Worker, timeout: float) -> None:
    """Until every inbound row is final and no notice is pending; else say what is left."""
    try:
        wait_for(lambda: not open_work(db_url), timeout=timeout, what="the worker to drain")
    except AssertionError as exc:
        left = open_work(db_url)
        raise AssertionError(
            f"{exc}: {len(left)} left, e.g. {left[:10]}; worker log: {worker.output()[-3000:]}"
        ) from None


def outage_config(
    folder: Path, *, port: int, db_url: str, broker: str, outbox: Path | None = None
) -> Path:
    """A config for a receiver and a worker that must ride out outages: the reconciler
    looks every second and retries start at a second, so recovery shows within a test."""
    return write_config(
        folder,
        port=port,
        db_url=db_url,
        broker=broker,
        queue="reconcile_after_seconds = 1\nretry_base_seconds = 1\nretry_max_seconds = 4\n",
        extra=f'[outbound]\ntransport = "file"\nfolder = "{outbox or folder / "outbox"}"\n',
    )


def assert_no_traceback(process: str, output: str) -> None:
    """An outage is expected weather: one-line warnings, never a traceback."""
    at = output.find("Traceback")
    if at >= 0:
        start = output.rfind("\n", 0, max(0, at - 600)) + 1
        raise AssertionError(f"{process} logged a traceback:\n{output[start : at + 2500]}")
