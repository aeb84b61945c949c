"""Roundup's mail gateway for benchmarks/peers.py: its own venv, a classic tracker, a timed run.

The tracker is Roundup's ``classic`` template on the ``sqlite`` backend, installed and
initialised with ``roundup-admin`` before the clock starts, with two changes a support
desk needs: unknown senders may open issues by mail (the Anonymous "Email Access" line
that classic's schema.py ships commented out; without it every customer is bounced),
and outgoing mail goes to a file (``[mail] debug``) instead of an SMTP server. Timed:
``roundup-mailgw -c issue TRACKER mailbox SPOOL``, one process over the whole mbox
(start-up included, about 0.3 s). If that mode fails, each message is piped to its own
``roundup-mailgw -c issue TRACKER`` instead, and the result says so.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from _peers_common import Measured, PeerError, ensure_venv, run

PINS = ["roundup==2.6.0"]
EMAIL_ACCESS = "db.security.addPermissionToRole('Anonymous', 'Email Access')"


def _tracker(bin_dir: Path, home: Path, outbox: Path) -> None:
    """Install and initialise a classic sqlite tracker at ``home``."""
    options = f"mail_domain=example.com,mail_debug={outbox},tracker_web=http://127.0.0.1:8917/t/"
    admin = [str(bin_dir / "roundup-admin"), "-i", str(home)]
    run([*admin, "install", "classic", "sqlite", options], timeout=120)
    schema = home / "schema.py"
    text = schema.read_text()
    if f"#{EMAIL_ACCESS}" not in text:
        raise PeerError("classic schema.py no longer has the commented Email Access line")
    schema.write_text(text.replace(f"#{EMAIL_ACCESS}", EMAIL_ACCESS))
    run([*admin, "initialise", secrets.token_hex(8)], timeout=120)


def _counts(home: Path) -> dict[str, int]:
    with sqlite3.connect(home / "db" / "db") as db:
        return {
            table: db.execute(f"SELECT count(*) FROM _{table}").fetchone()[0]  # noqa: S608 - fixed names
            for table in ("issue", "msg", "file", "user")
        }


def _bounces(outbox: Path) -> int:
    # Roundup answers a message it cannot file with a "Failed issue tracker submission".
    if not outbox.exists():
        return 0
    return outbox.read_bytes().count(b"\nSubject: Failed issue tracker submission")


def measure(cache: Path, mbox: Path, corpus: list[bytes], timeout: float) -> Measured:
    """Feed the mbox to ``roundup-mailgw`` on a fresh tracker; only the gateway is timed."""
    python, versions = ensure_venv(cache, "roundup", PINS)
    bin_dir = python.parent
    mailgw = [str(bin_dir / "roundup-mailgw"), "-c", "issue"]
    with tempfile.TemporaryDirectory(prefix="peers-roundup-") as tmp:
        root = Path(tmp)
        home, outbox, spool = root / "tracker", root / "outbox.txt", root / "spool.mbox"
        _tracker(bin_dir, home, outbox)
        # roundup-mailgw empties the spool as it goes: give it a copy.
        shutil.copyfile(mbox, spool)
        mode = "mailbox mode, one process"
        unread = 0
        start = time.perf_counter()
        try:
            run([*mailgw, str(home), "mailbox", str(spool)], timeout=timeout, cwd=root)
            seconds = time.perf_counter() - start
            # Roundup empties the spool only when every message was handled.
            unread = spool.stat().st_size
        except PeerError as exc:
            print(f"  roundup: mailbox mode failed ({exc}); piping messages one by one")
            shutil.rmtree(home)
            outbox.unlink(missing_ok=True)
            _tracker(bin_dir, home, outbox)
            mode = "one roundup-mailgw process per message, on stdin"
            deadline = time.monotonic() + timeout
            start = time.perf_counter()
            for raw in corpus:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(f"stdin mode took longer than {timeout:.0f}s") from exc
                run([*mailgw, str(home)], timeout=left, cwd=root, stdin=raw)
            seconds = time.perf_counter() - start
        counts = _counts(home)
        bounced = _bounces(outbox)
    check = (
        f"{counts['issue']} issues, {counts['msg']} msgs, {counts['file']} files, "
        f"{counts['user']} users; {bounced} bounced; {mode}"
        + (f"; {unread} bytes left in the spool" if unread else "")
    )
    if counts["msg"] == 0:
        raise PeerError(f"nothing was filed ({check})")
    version = ", ".join(f"{name} {v}" for name, v in versions.items())
    # Every message must have been filed as a msg, or the rate means nothing.
    valid = counts["msg"] == len(corpus) and not unread
    return Measured("Roundup mail gateway", version, len(corpus), seconds, check, valid)
