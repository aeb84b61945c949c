"""Helpers for the fault suite's process faults: the SMTP client load, a restartable
`mailgate run`, process-table look-ups, and the outbox ledger of notices."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from tests.faults.support import _env

SUPPORT = "support@example.com"


def load_message(run: str, n: int) -> tuple[str, bytes]:
    """Message ``n`` of a load: its own sender and Message-ID, so each opens a ticket."""
    mid = f"f{n}.{run}@customer.test"
    raw = (
        f"From: Cust {n} <c{n}@customer.test>\r\nTo: {SUPPORT}\r\n"
        f"Subject: Fault load {n}\r\nMessage-ID: <{mid}>\r\n"
        f"Date: Mon, 05 Jan 2026 09:30:00 +0000\r\n\r\nBody of message {n}.\r\n"
    ).encode()
    return mid, raw


def _reply_codes(exc: smtplib.SMTPException) -> list[int]:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return [code for code, _ in exc.recipients.values()]
    if isinstance(exc, smtplib.SMTPResponseException):
        return [exc.smtp_code]
    return []  # a dropped connection: no reply at all


class Client(threading.Thread):
    """An MTA in miniature: delivers each message until it gets 250, retrying otherwise.

    ``replies`` counts every reply code other than 250 that it was given (a dropped or
    refused connection counts under 0); an MTA would bounce on a 5xx, so the tests
    check there is none.
    """

    def __init__(self, port: int, messages: list[tuple[str, bytes]], patience: float = 90) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.messages = messages
        self.patience = patience
        self.acknowledged: set[str] = set()
        self.attempts = 0
        self.failures = 0
        self.replies: Counter[int] = Counter()
        self.error: BaseException | None = None

    @property
    def permanent(self) -> int:
        return sum(n for code, n in self.replies.items() if code >= 500)

    def run(self) -> None:
        try:
            for mid, raw in self.messages:
                deadline = time.monotonic() + self.patience
                while mid not in self.acknowledged:
                    assert time.monotonic() < deadline, f"{mid} never acknowledged"
                    self.attempts += 1
                    try:
                        with smtplib.SMTP("127.0.0.1", self.port, timeout=20) as smtp:
                            refused = smtp.sendmail("c@customer.test", [SUPPORT], raw)
                            assert not refused
                            # Delivered at the 250 to DATA, as for an MTA: a draining
                            # server may answer QUIT with 421, which changes nothing.
                            self.acknowledged.add(mid)
                    except smtplib.SMTPException as exc:
                        self.failures += 1
                        self.replies.update(_reply_codes(exc) or [0])
                        time.sleep(0.05)
                    except OSError:
                        # Connection refused/reset: the receiver was killed or is starting.
                        self.failures += 1
                        self.replies[0] += 1
                        time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            self.error = exc


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


@dataclass(frozen=True)
class Outbox:
    """Notices in the database against ``.eml`` files the file transport wrote."""

    by_state: dict[str, int]
    doubled_causes: int  # notices that share (kind, recipient, inbound message)
    files: int
    sent_without_file: int
    file_without_row: int


def read_outbox(db_url: str, folder: Path) -> Outbox:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT id, kind, recipient, inbound_id, state FROM notices")
            ).all()
    finally:
        engine.dispose()
    names = {p.name for p in folder.glob("*.eml")} if folder.exists() else set()
    ids = {int(i) for i, *_ in rows}
    sent = {int(i) for i, *_, state in rows if state == "sent"}
    per_cause = Counter((kind, recipient, inbound) for _, kind, recipient, inbound, _ in rows)
    return Outbox(
        by_state=dict(Counter(state for *_, state in rows)),
        doubled_causes=sum(n - 1 for n in per_cause.values() if n > 1),
        files=len(names),
        sent_without_file=sum(1 for i in sent if f"notice-{i}.eml" not in names),
        file_without_row=sum(
            1 for n in names if int(n.removeprefix("notice-").removesuffix(".eml")) not in ids
        ),
    )
