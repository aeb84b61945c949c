"""Peak memory of the bulk paths (issue 23, target 5): `mailgate ingest --mbox` of a
large mbox (default 1 GB) must stay under 200 MB of resident memory, streamed; and
`mailgate imap` draining 10,000 messages under 150 MB (run benchmarks/imap_drain.py
for that one: it prints its peak RSS).

    python3 benchmarks/memory.py [--megabytes 1024] [--processes 1]

The mbox is seeded and mostly attachments (about 400 KB a message), so it is large on
disk with a few thousand messages; each message still becomes a ticket. The peak RSS
is the child's own (``getrusage(RUSAGE_CHILDREN).ru_maxrss``), read after it exits.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT_MB = 200


def _write_mbox(path: Path, megabytes: int, seed: int = 1) -> int:
    """About ``megabytes`` of mail; returns how many messages."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    written = count = 0
    with path.open("wb") as out:
        while written < megabytes * 1024 * 1024:
            message = EmailMessage()
            message["From"] = f"customer{rng.randrange(500)}@customer{rng.randrange(20)}.test"
            message["To"] = "support@example.com"
            message["Subject"] = f"Logs for case {count}"
            message["Message-ID"] = f"<memory-{seed}-{count}@customer.test>"
            message["Date"] = "Mon, 05 Jan 2026 10:00:00 +0000"
            message.set_content("The export is attached.\n" * rng.randrange(5, 50))
            message.add_attachment(
                rng.randbytes(rng.randrange(200_000, 600_000)),
                maintype="application",
                subtype="octet-stream",
                filename=f"export-{count}.bin",
            )
            data = message.as_bytes(unixfrom=False).replace(b"\nFrom ", b"\n>From ")
            out.write(b"From memory@customer.test Mon Jan  5 10:00:00 2026\n" + data + b"\n\n")
            written += len(data)
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        mbox = Path(folder) / "big.mbox"
        started = time.perf_counter()
        count = _write_mbox(mbox, args.megabytes)
        size = mbox.stat().st_size / 1024 / 1024
        took = time.perf_counter() - started
        print(f"mbox: {count} messages, {size:.0f} MB, written in {took:.0f}s")
        conf = Path(folder) / "mailgate.toml"
        conf.write_text(
            f'[database]\nurl = "sqlite:///{folder}/mailgate.db"\n'
            f'[security]\nsecret = "memory-benchmark-{os.getpid()}-0123456789abcdef"\n'
            f'[outbound]\nfolder = "{folder}/outbox"\n'
        )
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mailgate",
                "--config",
                str(conf),
                "ingest",
                "--mbox",
                str(mbox),
                "--processes",
                str(args.processes),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )
        elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(done.stdout.strip() or done.stderr.strip())
    verdict = "met" if peak < LIMIT_MB and done.returncode == 0 else "NOT MET"
    print(
        f"ingest --mbox ({args.processes} process{'es' if args.processes > 1 else ''}): "
        f"{elapsed:.0f}s, {count / elapsed:.0f} msg/s, {size / elapsed:.1f} MB/s; "
        f"peak RSS {peak:.0f} MB (target < {LIMIT_MB} MB): {verdict}"
    )


if __name__ == "__main__":
    main()
