"""Issue 10: the disk of the SQLite file's folder fills up under SMTP load.

The database lives on a small tmpfs mounted for the test. At seeded points a filler
file takes every free byte: the receiver must answer ``452 4.3.1`` (never ``250`` for
a message it did not store), stay up, and keep the database sound; ``mailgate ingest``
exits 75 with one line. Once the filler is gone the load completes with a clean ledger.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailgate.core.errors import EX_TEMPFAIL
from tests.conftest import SECRET
from tests.faults.load import Client, load_message
from tests.faults.support import (
    Receiver,
    fault_seed,
    free_port,
    read_ledger,
    run_mailgate,
    scaled,
    wait_for,
)

pytestmark = pytest.mark.faults

DISK = "32m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of its own, so filling it fills nobody else's disk; always unmounted."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs for the disk-full test: {mounted.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason + " (run as root, or in CI)")
    try:
        yield folder
    finally:
        # Lazily if something still has a file open there: the mount must not outlive us.
        if subprocess.run(["umount", str(folder)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file that takes every byte still free in ``folder``."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size = 1 << 20
        while size:  # big writes until one fails, then smaller ones for what is left
            try:
                os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                size //= 2
    finally:
        os.close(fd)
    assert os.statvfs(folder).f_bavail == 0
    return filler


def _config(tmp_path: Path, disk: Path, port: int) -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{disk / "m.db"}"\n'
        f'[security]\nsecret = "{SECRET}"\n[queue]\nbroker = "embedded"\n'
        f'[smtp]\nlisten = "127.0.0.1:{port}"\n'
        f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n'
    )
    return path


def _ingest_until_refused(config: Path, probe: Path, seed: int, probes: list[str]) -> list[str]:
    """Run ``mailgate ingest`` until the full disk refuses it; return what it printed.

    The receiver's 452 proves the disk was full a moment ago, yet a small message can
    still fit where SQLite reuses the WAL's space after a checkpoint. Such a message is
    stored and acknowledged (exit 0), so it joins the ledger and the next one is tried.
    """
    for n in range(20):
        mid, raw = load_message(f"ingest{seed}", n)
        probe.write_bytes(raw)
        probes.append(mid)
        ingest = run_mailgate(config, "ingest", str(probe))
        if ingest.returncode != 0:
            assert ingest.returncode == EX_TEMPFAIL, (ingest.returncode, ingest.stderr)
            return ingest.stderr.strip().splitlines()
    raise AssertionError("20 messages fitted on a disk the receiver found full")


def test_full_disk_answers_452_and_stores_nothing_it_did_not_acknowledge(
    tmp_path: Path, small_disk: Path
) -> None:
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not a secret
    total = scaled(120, 1500)
    fills = rng.randint(scaled(1, 3), scaled(2, 6))
    # In the first half: messages that still fit in the WAL's reused space (up to its
    # checkpoint size, ~30 of these) get 250, so enough must follow each fill for the
    # disk to run out for real.
    fill_at = sorted(rng.sample(range(10, total // 2), fills))
    port = free_port()
    config = _config(tmp_path, small_disk, port)
    messages = [load_message(f"d{seed}", n) for n in range(total)]
    probes: list[str] = []  # the Message-IDs `mailgate ingest` was given while full
    receiver = Receiver(config, port)
    receiver.start()
    client = Client(port, messages)
    started = time.monotonic()
    client.start()
    held: list[float] = []
    acked_while_full: list[int] = []
    ingest_lines: list[str] = []
    try:
        for point in fill_at:
            client.wait_acknowledged(point)
            filler = fill(small_disk)
            full_since = time.monotonic()
            refused_before = client.replies[452]
            acked_before = len(client.acknowledged)
            wait_for(
                lambda n=refused_before: client.replies[452] >= n + 3 or not client.is_alive(),
                timeout=60,
                what="452 replies while the disk is full",
            )
            if not ingest_lines:  # the receiver has been refused, so the disk is truly full
                ingest_lines = _ingest_until_refused(config, tmp_path / "probe.eml", seed, probes)
            time.sleep(rng.uniform(0, 1.0))
            # A 250 while the disk is full is for a message that did fit (SQLite reuses
            # WAL space after a checkpoint): it must be in the database already.
            acked = set(client.acknowledged)
            stored = read_ledger(f"sqlite:///{small_disk / 'm.db'}", acked)
            assert not {m for m in acked if m not in stored.rows}, "250 without a stored row"
            acked_while_full.append(len(acked) - acked_before)
            assert receiver.proc is not None and receiver.proc.poll() is None, "receiver died"
            filler.unlink()
            held.append(round(time.monotonic() - full_since, 2))
        client.finish(timeout=scaled(150, 1500))
        assert receiver.proc is not None and receiver.proc.poll() is None, "receiver died"
    finally:
        receiver.stop()
    assert receiver.starts == 1
    retried = run_mailgate(config, "ingest", "-q", str(tmp_path / "probe.eml"))  # the refused one
    assert retried.returncode == 0, retried.stderr
    burst = run_mailgate(config, "worker", "--burst")
    assert burst.returncode == 0, burst.stderr
    db = small_disk / "m.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:  # closed, or umount finds it busy
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
    ledger = read_ledger(f"sqlite:///{db}", client.acknowledged | set(probes))
    print(
        f"disk full: seed={seed} fills={fills} at={fill_at} held_seconds={held} "
        f"acknowledged_while_full={acked_while_full} ingest_probes={len(probes)} "
        f"sent={total} attempts={client.attempts} replies={dict(client.replies)} "
        f"acknowledged={len(client.acknowledged)} "
        f"inbound_rows={sum(len(r) for r in ledger.rows.values())} "
        f"redelivered={ledger.redelivered} outcomes={ledger.outcomes()} "
        f"duplicates={len(ledger.doubled)} lost={len(ledger.lost)} integrity={integrity} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    assert ingest_lines == [ingest_lines[0]] and ingest_lines[0].startswith(
        f"mailgate: no space left for the database in {small_disk}"
    ), ingest_lines
    assert client.replies[452] >= 3 * fills, client.replies
    assert set(client.replies) <= {0, 452}, client.replies  # never a 5xx
    assert integrity == [("ok",)]
    assert len(ledger.acknowledged) == total + len(probes)
    assert not ledger.lost
    assert not ledger.doubled
    assert not ledger.unfinished
    assert ledger.redelivered == 0
