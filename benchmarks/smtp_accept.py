"""How fast the SMTP receiver accepts mail, against a bare aiosmtpd handler.

Run from a checkout:  python3 benchmarks/smtp_accept.py  [--seconds 3]

Each receiver runs in a child process of its own on 127.0.0.1; this process drives
1, 4 and 16 concurrent SMTP sessions (asyncio, one connection each, one message per
MAIL/RCPT/DATA transaction) for a few seconds per level and prints messages/s and the
latency from the DATA command to the final 250. Receivers:

- bare:     aiosmtpd with a handler that stores nothing (the ceiling);
- mailgate: mailgate's receiver, 250 only after a durable SQLite commit (WAL,
            synchronous=FULL), processing handed off (what a broker-backed role does);
- mailgate+process: the same with the embedded broker, processing in the process
            (what `mailgate smtp` alone does on the default configuration);
- run:      the default one-box configuration as `mailgate run` has it: the receiver
            and a `mailgate worker` process beside it, which the receiver wakes for
            each message it stores and leaves the processing to. Before the load levels,
            it also measures receipt to ticket (250 sent -> inbound row processed) at
            20 messages/s from one client. The worker's writes let the receiver's go
            first while mail comes in (mailgate/db/write_turns.py): after the load it
            prints what the worker had left and how long it took to process it.

The target (issue 23): `run` acknowledges 16 clients at >= 0.5 x bare, and its
receipt-to-ticket p99 stays under 250 ms at 20 msg/s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout

LEVELS = (1, 4, 16)
KINDS = tuple(os.environ.get("BENCH_KINDS", "bare,mailgate,mailgate+process,run").split(","))
SECRET = secrets.token_urlsafe(32)
BODY = ("The printer on the third floor prints only blank pages since Monday.\r\n" * 20).encode()


def _now() -> datetime:
    return datetime.now(UTC)


# --- receivers (child processes) -------------------------------------------------


class _Bare:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


async def _serve(kind: str, folder: str, ports: Any, stop: Any, stats: Any) -> None:
    loop = asyncio.get_running_loop()
    if kind == "bare":
        from aiosmtpd.smtp import SMTP

        server = await loop.create_server(
            lambda: SMTP(_Bare(), hostname="bench", enable_SMTPUTF8=True, loop=loop),
            "127.0.0.1",
            0,
        )
        ports.put(server.sockets[0].getsockname()[1])
        await loop.run_in_executor(None, stop.wait)
        server.close()
        stats.put({})
        return
    from mailgate.core.settings import DatabaseSettings, SecuritySettings, Settings, SmtpSettings
    from mailgate.db.models import InboundMessage
    from mailgate.db.store import open_store
    from mailgate.inbound.smtp.server import SmtpServer

    url = f"sqlite:///{folder}/bench.db"
    settings = Settings(
        database=DatabaseSettings(url=url),
        security=SecuritySettings(secret=SECRET),
        smtp=SmtpSettings(listen="127.0.0.1:0", hostname="bench", max_connections_per_ip=100),
    )
    store = open_store(settings)
    worker = _start_worker(folder, url, settings) if kind == "run" else None
    on_stored = None if kind in ("mailgate+process", "run") else (lambda _id: None)
    mg = SmtpServer(settings, store, now=_now, on_stored=on_stored)
    _, port = await mg.start()
    ports.put(port)
    await loop.run_in_executor(None, stop.wait)
    backlog = mg.backlog
    logging.getLogger("mailgate").setLevel(logging.ERROR)  # the backlog is reported below
    await mg.stop(timeout=0)
    from sqlalchemy import func, select

    def waiting() -> int:
        with store.transaction() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(InboundMessage)
                    .where(InboundMessage.state == "received")
                )
                or 0
            )

    with store.transaction() as session:
        stored = session.scalar(select(func.count()).select_from(InboundMessage))
    drained: float | None = None
    if worker is not None:
        # The worker lets the receiver's writes go first while mail is coming in: what it
        # left meanwhile, and how long it takes once the load is over (at most 5 min).
        backlog = left = waiting()
        started = time.monotonic()
        while left and time.monotonic() - started < 300:
            time.sleep(0.5)
            left = waiting()
        drained = None if left else time.monotonic() - started
        worker.terminate()
        worker.wait(timeout=60)
    stats.put({"stored": stored, "backlog_at_end": backlog, "drained_seconds": drained})
    store.engine.dispose()


def _start_worker(folder: str, url: str, settings: Any) -> subprocess.Popen[bytes]:
    """`mailgate worker` on the same database, as `mailgate run` starts it; returns once
    it listens for wake-ups."""
    from mailgate.jobs import wakeup

    conf = Path(folder) / "mailgate.toml"
    conf.write_text(
        f'[database]\nurl = "{url}"\n[security]\nsecret = "{SECRET}"\n'
        f'[outbound]\ntransport = "file"\nfolder = "{folder}/outbox"\n'
    )
    from mailgate.cli.run_cmd import ROLE_NICE, role_argv

    # Exactly as `mailgate run` starts its worker role: the same command, the same nice.
    worker = subprocess.Popen(
        role_argv("worker", ["--config", str(conf)], verbose=False),
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        preexec_fn=lambda: os.nice(ROLE_NICE.get("worker", 0)),  # noqa: PLW1509
    )
    deadline = time.monotonic() + 60
    while not list(wakeup._folder().glob(f"{wakeup._prefix(settings)}*.wake")):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the worker did not start")
        time.sleep(0.05)
    return worker


def _receiver(kind: str, folder: str, ports: Any, stop: Any, stats: Any) -> None:
    asyncio.run(_serve(kind, folder, ports, stop, stats))


# --- load (this process) ------------------------------------------------------------


async def _reply(reader: asyncio.StreamReader) -> int:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("receiver closed the connection")
        if line[3:4] != b"-":
            return int(line[:3])


async def _session(port: int, ident: int, deadline: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def command(line: bytes, expect: int) -> None:
        writer.write(line + b"\r\n")
        code = await _reply(reader)
        if code != expect:
            raise RuntimeError(f"{line!r}: expected {expect}, got {code}")

    assert await _reply(reader) == 220
    await command(b"EHLO bench.test", 250)
    n = 0
    while time.perf_counter() < deadline:
        n += 1
        await command(f"MAIL FROM:<client{ident}@customer.test>".encode(), 250)
        await command(b"RCPT TO:<support@example.com>", 250)
        message = (
            f"From: client{ident}@customer.test\r\nTo: support@example.com\r\n"
            f"Subject: bench {ident}.{n}\r\nMessage-ID: <{ident}.{n}.{time.time_ns()}@bench>\r\n"
            "\r\n"
        ).encode() + BODY
        started = time.perf_counter()
        await command(b"DATA", 354)
        await command(message + b".", 250)
        latencies.append(time.perf_counter() - started)
    await command(b"QUIT", 221)
    writer.close()
    await writer.wait_closed()


@dataclass
class Result:
    kind: str
    clients: int
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # receiver CPU per message: comparable even on a busy machine


async def _load(port: int, clients: int, seconds: float) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_session(port, i, deadline, latencies) for i in range(clients)))
    return len(latencies), time.perf_counter() - started, latencies


def _cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(kind: str, seconds: float) -> tuple[list[Result], dict[str, Any]]:
    ctx = mp.get_context("spawn")
    ports, stats, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    with tempfile.TemporaryDirectory() as folder:
        child = ctx.Process(target=_receiver, args=(kind, folder, ports, stop, stats))
        child.start()
        try:
            port = ports.get(timeout=60)
            # Warm-up: connections, caches, SQLite pages.
            acknowledged, _, _ = asyncio.run(_load(port, 4, 0.5))
            to_ticket: list[float] = []
            if kind == "run":
                to_ticket = _receipt_to_ticket(port, Path(folder) / "bench.db", seconds)
                acknowledged += len(to_ticket)
            results = []
            for clients in LEVELS:
                cpu = _cpu_seconds(child.pid or 0)
                done, elapsed, lat = asyncio.run(_load(port, clients, seconds))
                cpu = _cpu_seconds(child.pid or 0) - cpu
                acknowledged += done
                results.append(
                    Result(
                        kind,
                        clients,
                        done / elapsed,
                        statistics.median(lat) * 1000,
                        _percentile(lat, 0.99) * 1000,
                        cpu / done * 1000,
                    )
                )
        finally:
            stop.set()
        info = stats.get(timeout=420)  # the worker's drain takes up to 5 min
        child.join(timeout=120)
    if info:
        info["acknowledged"] = acknowledged
        if to_ticket:
            info["to_ticket_p50_ms"] = statistics.median(to_ticket) * 1000
            info["to_ticket_p99_ms"] = _percentile(to_ticket, 0.99) * 1000
            info["to_ticket_count"] = len(to_ticket)
    return results, info


def _receipt_to_ticket(
    port: int, database: Path, seconds: float, rate: float = 20.0
) -> list[float]:
    """One client sends ``rate`` messages a second; per message, the time from its 250
    to its inbound row reading ``processed`` (written in the ticket's transaction),
    polled every 2 ms."""
    import smtplib

    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    latencies: list[float] = []
    # The warm-up's messages first: a backlog would be measured, not the latency.
    deadline = time.perf_counter() + 120
    while db.execute("SELECT count(*) FROM inbound_messages WHERE state = 'received'").fetchone()[
        0
    ]:
        if time.perf_counter() > deadline:
            raise RuntimeError("the worker did not catch up with the warm-up")
        time.sleep(0.05)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            start = time.perf_counter()
            for n in range(int(seconds * rate)):
                time.sleep(max(0.0, start + n / rate - time.perf_counter()))
                ident = f"latency.{n}.{time.time_ns()}@bench"
                message = (
                    f"From: latency{n}@customer.test\r\nTo: support@example.com\r\n"
                    f"Subject: latency {n}\r\nMessage-ID: <{ident}>\r\n\r\n"
                ).encode() + BODY
                client.sendmail(f"latency{n}@customer.test", ["support@example.com"], message)
                acked = time.perf_counter()
                while True:
                    # The newest row is this message's: one client, one message at a time.
                    row = db.execute(
                        "SELECT state FROM inbound_messages ORDER BY id DESC LIMIT 1"
                    ).fetchone()
                    if row is not None and row[0] == "processed":
                        break
                    if time.perf_counter() - acked > 30:
                        raise RuntimeError(f"message {n} not processed within 30 s")
                    time.sleep(0.002)
                latencies.append(time.perf_counter() - acked)
    finally:
        db.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per concurrency level")
    args = parser.parse_args()
    table: dict[tuple[str, int], Result] = {}
    to_ticket_p99 = float("inf")
    print(
        f"{'receiver':<18} {'clients':>7} {'msg/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'cpu ms/msg':>10}"
    )
    for kind in KINDS:
        results, info = run(kind, args.seconds)
        for r in results:
            table[(kind, r.clients)] = r
            print(
                f"{kind:<18} {r.clients:>7} {r.rate:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
                f"{r.cpu_ms:>10.3f}"
            )
        if info:
            # Invariant 1, checked: every 250 the clients heard is a committed row.
            assert info["stored"] == info["acknowledged"], info
            print(
                f"{'':<18} {info['acknowledged']} acknowledged = {info['stored']} rows stored; "
                f"{info['backlog_at_end']} left to process"
            )
            if info.get("drained_seconds") is not None and info["backlog_at_end"]:
                print(
                    f"{'':<18} the worker processed them in {info['drained_seconds']:.0f} s "
                    "once the load was over"
                )
            if "to_ticket_p99_ms" in info:
                print(
                    f"{'':<18} receipt to ticket at 20 msg/s ({info['to_ticket_count']} "
                    f"messages): p50 {info['to_ticket_p50_ms']:.1f} ms, "
                    f"p99 {info['to_ticket_p99_ms']:.1f} ms"
                )
                to_ticket_p99 = info["to_ticket_p99_ms"]
    print()
    for kind in KINDS[1:]:
        for clients in LEVELS:
            ratio = table[(kind, clients)].rate / table[("bare", clients)].rate
            print(f"{kind} / bare at {clients:>2} clients: {ratio:.2f}")
    ratio = table[("run", 16)].rate / table[("bare", 16)].rate
    verdict = "met" if ratio >= 0.5 else "MISSED"
    print(f"target (run >= 0.5 x bare at 16 clients): {verdict} ({ratio:.2f})")
    verdict = "met" if to_ticket_p99 < 250 else "MISSED"
    print(f"target (run: receipt to ticket p99 < 250 ms at 20 msg/s): {verdict}")


if __name__ == "__main__":
    main()
