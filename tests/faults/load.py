"""The load every fault test drives, and what it checks afterwards: an MTA-like client
that retries until it gets 250 and keeps every attempt, and the outbox (notice rows
against the files the file transport wrote)."""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import sqlalchemy as sa

from tests.faults.support import wait_for

SUPPORT = "support@example.com"


def load_message(run: str, n: int) -> tuple[str, bytes]:
    """Message ``n`` of a load run: its own sender, so no notice is rate-limited."""
    mid = f"f{n}.{run}@customer.test"
    raw = (
        f"From: Cust {n} <c{n}@customer.test>\r\nTo: {SUPPORT}\r\n"
        f"Subject: Fault load {n}\r\nMessage-ID: <{mid}>\r\n"
        f"Date: Mon, 05 Jan 2026 09:30:00 +0000\r\n\r\nBody of message {n}.\r\n"
    ).encode()
    return mid, raw


@dataclass(frozen=True)
class Attempt:
    mid: str
    began: float  # time.monotonic() before connecting
    ended: float
    code: int  # the reply to the message: 250, a 4xx; 0 when the connection failed


class Client(threading.Thread):
    """An MTA in miniature: delivers each message until it gets 250, retrying otherwise.
    Every attempt is kept with its reply code and times. ``messages`` may be endless
    (a steady load): ``close`` then ends the run once the message in hand is taken."""

    def __init__(
        self,
        port: int,
        messages: Iterable[tuple[str, bytes]],
        patience: float = 90,
        interval: float = 0.0,
    ) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.messages = messages
        self.patience = patience
        self.interval = interval  # at least this long between two new messages: a steady rate
        self.sent: list[str] = []  # Message-IDs in the order they were first tried
        self.acknowledged: set[str] = set()
        self.log: list[Attempt] = []
        self.error: BaseException | None = None
        self._closing = threading.Event()

    @property
    def attempts(self) -> int:
        return len(self.log)

    @property
    def failures(self) -> int:
        return sum(1 for a in self.log if a.code != 250)

    @property
    def replies(self) -> Counter[int]:
        """Every answer other than 250, by code (0: no answer, the connection failed)."""
        return Counter(a.code for a in self.log if a.code != 250)

    @property
    def permanent(self) -> int:
        """5xx answers: an MTA would bounce the message, so there must be none."""
        return sum(n for code, n in self.replies.items() if code >= 500)

    def close(self) -> None:
        self._closing.set()

    def run(self) -> None:
        try:
            for mid, raw in self.messages:
                if self._closing.wait(self.interval):
                    return
                self.sent.append(mid)
                deadline = time.monotonic() + self.patience
                while mid not in self.acknowledged:
                    assert time.monotonic() < deadline, f"{mid} never acknowledged"
                    began, code = time.monotonic(), 250
                    try:
                        with smtplib.SMTP("127.0.0.1", self.port, timeout=20) as smtp:
                            refused = smtp.sendmail("c@customer.test", [SUPPORT], raw)
                            assert not refused
                            # Delivered at the 250 to DATA, as for an MTA: a draining
                            # server may answer QUIT with 421, which changes nothing.
                            self.acknowledged.add(mid)
                    except smtplib.SMTPRecipientsRefused as exc:
                        code = min(c for c, _ in exc.recipients.values())
                    except smtplib.SMTPResponseException as exc:
                        code = exc.smtp_code  # 451/452: not stored, try again
                    except (OSError, smtplib.SMTPException):
                        code = 0  # refused or reset: the receiver was killed or starting
                    self.log.append(Attempt(mid, began, time.monotonic(), code))
                    if code != 250:
                        time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            self.error = exc

    def wait_acknowledged(self, count: int, *, timeout: float = 120, what: str = "") -> None:
        """Until ``count`` messages have had their 250 (the client must still be running)."""
        wait_for(
            lambda: len(self.acknowledged) >= count or not self.is_alive(),
            timeout=timeout,
            what=what or f"{count} acknowledgements",
        )
        assert len(self.acknowledged) >= count, f"client stopped early: {self.error}"

    def codes_within(self, start: float, end: float) -> Counter[int]:
        """Reply codes of the attempts made entirely between ``start`` and ``end``."""
        return Counter(a.code for a in self.log if a.began >= start and a.ended <= end)

    def finish(self, timeout: float) -> None:
        self.join(timeout=timeout)
        assert not self.is_alive(), "client did not finish"
        assert self.error is None, self.error


@dataclass
class Notices:
    """The outbox: notice rows against the ``.eml`` files the file transport wrote."""

    rows: dict[int, tuple[int | None, str, str, str, str]]  # id → (ticket, kind, to, state, mid)
    files: dict[int, str]  # notice id → Message-ID in its notice-<id>.eml
    stray: list[str] = field(default_factory=list)  # anything else in the folder
    # A write a SIGKILL cut short: its hidden temporary file, never a notice (readers
    # take notice-*.eml only; the transport sweeps stale ones).
    interrupted: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(1 for r in self.rows.values() if r[3] == "sent")

    @property
    def doubled(self) -> dict[tuple[int | None, str, str], int]:
        """(ticket, kind, recipient) with more than one notice: one event noticed twice."""
        counts = Counter((t, k, to) for t, k, to, _, _ in self.rows.values())
        return {key: n for key, n in counts.items() if n > 1}

    @property
    def unsent(self) -> dict[int, str]:
        return {i: r[3] for i, r in self.rows.items() if r[3] != "sent"}

    @property
    def mismatched(self) -> list[int]:
        """Sent notices without their file, files without a sent notice, or a file
        carrying another notice's Message-ID."""
        sent = {i for i, r in self.rows.items() if r[3] == "sent"}
        wrong = {i for i in sent & set(self.files) if self.files[i] != self.rows[i][4]}
        return sorted((sent ^ set(self.files)) | wrong)

    @property
    def file_message_ids_doubled(self) -> int:
        return sum(n - 1 for n in Counter(self.files.values()).values() if n > 1)


def read_notices(db_url: str, outbox: Path) -> Notices:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT id, ticket_id, kind, recipient, state, message_id FROM notices")
            )
            rows = {int(i): (t, k, to, s, m) for i, t, k, to, s, m in found}
    finally:
        engine.dispose()
    files: dict[int, str] = {}
    stray: list[str] = []
    interrupted: list[str] = []
    for path in sorted(outbox.iterdir()) if outbox.exists() else []:
        if path.name.startswith(".notice-") and path.suffix == ".tmp":
            interrupted.append(path.name)
            continue
        stem = path.name.removeprefix("notice-").removesuffix(".eml")
        if not (path.name.startswith("notice-") and path.suffix == ".eml" and stem.isdigit()):
            stray.append(path.name)
            continue
        parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
        files[int(stem)] = str(parsed["Message-ID"] or "").strip().strip("<>")
    return Notices(rows, files, stray, interrupted)
