"""Time `mailgate imap --once` draining N messages from a throwaway Dovecot.

    PYTHONPATH=. python3 -m benchmarks.imap_drain [N] [BATCH_SIZE]

Prints the append time, the drain time and messages per second. Needs dovecot
installed (as the tests do); uses SQLite in a temporary folder.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import SECRET
from tests.dovecot import PASSWORD, Dovecot


def message(i: int) -> bytes:
    return (
        f"From: customer{i % 97}@acme.test\r\nTo: support@example.com\r\n"
        f"Subject: Case {i}\r\nMessage-ID: <bench-{i}@acme.test>\r\n\r\n"
        f"Please help with case {i}.\r\n{'Some text. ' * 200}\r\n"
    ).encode()


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    server = Dovecot()
    try:
        server.start()
        started = time.perf_counter()
        with server.client() as client:
            for start in range(0, total, 500):
                chunk = range(start, min(total, start + 500))
                client.multiappend("INBOX", [message(i) for i in chunk])
        appended = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "mailgate.toml"
            config.write_text(
                f'[database]\nurl = "sqlite:///{tmp}/mailgate.db"\n'
                f'[security]\nsecret = "{SECRET}"\n'
                f'[[imap.mailboxes]]\nname = "support"\nport = {server.port}\nsecurity = "none"\n'
                f'username = "support"\npassword = "{PASSWORD}"\nbatch_size = {batch}\n'
            )
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "mailgate", "--config", str(config), "imap", "--once"],
                capture_output=True,
                text=True,
                check=False,
            )
            drained = time.perf_counter() - started
        print(done.stdout.strip())
        if done.returncode:
            print(done.stderr, file=sys.stderr)
        print(
            f"{total} messages (~{len(message(0))} bytes each): appended in {appended:.1f}s; "
            f"`mailgate imap --once` drained them in {drained:.1f}s "
            f"({total / drained:.0f} msg/s, store + move + process into tickets); "
            f"peak RSS {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024} MiB"
        )
        print(f"INBOX {server.count('INBOX')}, Processed {server.count('Processed')}")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
