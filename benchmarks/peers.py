"""Issue 23, target 1: ``mailgate ingest --mbox`` against its peers on the same messages.

    python3 benchmarks/peers.py [--count 1000] [--seed 1] [--cache DIR] [--skip-peers]

One run builds the corpus (benchmarks/corpus.py: seeded, so every run and every machine
sees the same bytes) and measures, each in a fresh temporary folder:

* mail-parser: ``mailparser.parse_from_bytes`` over every message in this process,
  with nothing stored: the ceiling for any gateway that parses mail in Python;
* mailgate: ``mailgate --config CONF ingest --mbox CORPUS --quiet`` as a subprocess on
  the one-box default (SQLite, embedded queue, file outbox; the database migrated
  before the clock starts); also with ``--processes 2`` when ``ingest`` offers it.
  Timed is the whole subprocess, start-up included. Afterwards every message must
  have an inbound row with an outcome;
* django-helpdesk: a local-directory queue, one .eml file per message, imported by
  ``helpdesk.email.process_email()`` (benchmarks/_peers_django.py);
* Roundup: ``roundup-mailgw`` on a classic sqlite tracker (benchmarks/_peers_roundup.py).

The peers are installed with pip into their own venvs under ``--cache`` (default
~/.cache/mailgate-bench) when missing, at pinned versions. Their set-up (migrations,
tracker install) is not timed, and their timers start after their interpreter is up,
so start-up counts against mailgate only. A peer that cannot be installed or run is
reported with the reason and the others go on. Every subprocess has a timeout.

Targets: mailgate ≥ 20x django-helpdesk, ≥ 100x Roundup, ≥ 0.3x mail-parser.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import logging
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import _peers_django  # noqa: E402 - after the path is set
import _peers_roundup  # noqa: E402
from _peers_common import Measured, PeerError, Skipped, run, tail  # noqa: E402
from corpus import messages, write_mbox  # noqa: E402

TARGETS = [("django-helpdesk", 20.0), ("Roundup mail gateway", 100.0), ("mail-parser", 0.3)]


def _mail_parser(corpus: list[bytes]) -> Measured:
    try:
        import mailparser
    except ImportError as exc:
        raise PeerError(
            f"mail-parser is not installed here ({exc}); pip install mail-parser"
        ) from exc
    # Its warnings about odd headers would go to stderr for every message; not wanted.
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    parsed = attachments = 0
    start = time.perf_counter()
    for raw in corpus:
        attachments += len(mailparser.parse_from_bytes(raw).attachments)
        parsed += 1
    seconds = time.perf_counter() - start
    check = f"{parsed} parsed, {attachments} attachments decoded, nothing stored"
    version = f"mail-parser {importlib.metadata.version('mail-parser')}"
    return Measured("mail-parser", version, len(corpus), seconds, check)


def _mailgate_version() -> str:
    version = f"mailgate {importlib.metadata.version('mailgate')}"
    try:
        # Read-only: which commit the tree is at, so a figure can be traced back.
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            timeout=10,
            check=True,
        )
        mark = "+changes" if dirty.stdout.strip() else ""
        version += f" ({head.stdout.decode().strip()}{mark})"
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def _ingest_help(env: dict[str, str]) -> str:
    try:
        done = run([sys.executable, "-m", "mailgate", "ingest", "--help"], timeout=60, env=env)
    except PeerError as exc:
        print(f"  mailgate ingest --help failed: {exc}", file=sys.stderr)
        return ""
    return done.stdout.decode()


def _children_cpu() -> float:
    """CPU seconds (user and system) of the children waited for so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _mailgate(mbox: Path, count: int, processes: int, timeout: float) -> Measured:
    # The tree's own code, whatever mailgate is installed in this interpreter.
    env = dict(os.environ, PYTHONPATH=str(REPO))
    mailgate = [sys.executable, "-m", "mailgate"]
    with tempfile.TemporaryDirectory(prefix="peers-mailgate-") as tmp:
        root = Path(tmp)
        conf = root / "mailgate.toml"
        # `mailgate init`: the commented default config (SQLite beside it, embedded
        # queue, ./outbox), exactly what a one-box install starts from.
        run([*mailgate, "init", str(conf)], timeout=60, cwd=root, env=env)
        run([*mailgate, "--config", str(conf), "db", "upgrade"], timeout=120, cwd=root, env=env)
        options = ["--quiet"] + (["--processes", str(processes)] if processes > 1 else [])
        ingest = [*mailgate, "--config", str(conf), "ingest", *options, "--mbox"]
        # The same command over an empty mbox: the fixed start-up cost inside the timed
        # figure (and the imports are then warm, as the peers' are after their set-up).
        empty = root / "empty.mbox"
        empty.write_bytes(b"")
        start = time.perf_counter()
        run([*ingest, str(empty)], timeout=120, cwd=root, env=env)
        startup = time.perf_counter() - start
        start, before = time.perf_counter(), _children_cpu()
        done = run([*ingest, str(mbox)], timeout=timeout, cwd=root, env=env)
        seconds = time.perf_counter() - start
        cpu = _children_cpu() - before  # its workers' too: they are waited for
        with sqlite3.connect(root / "mailgate.db") as db:
            rows = db.execute("SELECT count(*) FROM inbound_messages").fetchone()[0]
            outcomes = db.execute(
                "SELECT outcome, count(*) FROM inbound_messages GROUP BY outcome ORDER BY 2 DESC"
            ).fetchall()
            tickets = db.execute("SELECT count(*) FROM tickets").fetchone()[0]
    pending = sum(n for outcome, n in outcomes if not outcome)
    ok = rows == count and pending == 0
    detail = ", ".join(f"{n} {outcome or 'no outcome'}" for outcome, n in outcomes)
    check = (
        f"{rows} inbound rows for {count} messages ({detail}); {tickets} tickets; "
        + ("every message has an outcome" if ok else "NOT every message has an outcome")
        + f"; start-up (the same command on an empty mbox) {startup:.2f}s"
        + f"; {1000 * cpu / count:.2f} ms of CPU per message, all its processes"
    )
    if done.stderr.strip():
        check += f"; stderr: {tail(done.stderr, 2)}"
    name = "mailgate ingest --mbox" + (f" --processes {processes}" if processes > 1 else "")
    return Measured(name, _mailgate_version(), count, seconds, check, valid=ok)


def _attempt(system: str, measure: Callable[[], Measured]) -> Measured | Skipped:
    print(f"  measuring {system} ...", file=sys.stderr, flush=True)
    try:
        return measure()
    except Exception as exc:  # noqa: BLE001 - a broken peer must not stop the others
        reason = str(exc) if isinstance(exc, PeerError) else f"{type(exc).__name__}: {exc}"
        return Skipped(system, reason)


def _report(results: list[Measured | Skipped], corpus_line: str) -> None:
    print(corpus_line)
    print(f"\n{'system':<36} {'messages':>8} {'seconds':>9} {'msg/s':>9}")
    measured = [r for r in results if isinstance(r, Measured)]
    for r in measured:
        flag = "" if r.valid else "  (invalid: see checks)"
        print(f"{r.system:<36} {r.messages:>8} {r.seconds:>9.2f} {r.rate:>9.1f}{flag}")
    print("\nversions and checks:")
    for result in results:
        if isinstance(result, Measured):
            print(f"  {result.system}: {result.version}\n      {result.check}")
        else:
            print(f"  {result.system}: NOT MEASURED: {result.reason}")
    by_name = {r.system: r for r in measured}
    print("\nratios (mailgate msg/s / peer msg/s):")
    for gate in (r for r in measured if r.system.startswith("mailgate")):
        for peer, target in TARGETS:
            other = by_name.get(peer)
            if other is None:
                print(f"  {gate.system} / {peer}: n/a (not measured)  target >= {target:g}x")
                continue
            ratio = gate.rate / other.rate
            verdict = "met" if ratio >= target else "not met"
            if not (gate.valid and other.valid):
                verdict = "INVALID: a run did not process every message (see checks)"
            print(f"  {gate.system} / {peer}: {ratio:.2f}x  target >= {target:g}x  {verdict}")
    _budgets(by_name)


def _budgets(by_name: dict[str, Measured]) -> None:
    """What each target asks of this machine: the rate, and the CPU time per message
    that rate leaves on all its cores, next to what the bare parse alone takes (one
    core's time per message). A target whose budget is near or under the parse's cannot
    be met by a gateway that parses each message once and also stores it."""
    parse = by_name.get("mail-parser")
    cores = os.cpu_count() or 1
    lines = []
    for peer, target in TARGETS:
        other = by_name.get(peer)
        if other is None or not other.valid:
            continue
        rate = target * other.rate
        lines.append(
            f"  {target:g}x {peer}: {rate:,.0f} msg/s, "
            f"{1000 * cores / rate:.2f} ms of CPU per message on {cores} cores"
        )
    if not lines:
        return
    print("\nwhat the targets ask of this machine:")
    print("\n".join(lines))
    if parse is not None:
        print(f"  mail-parser's parse alone: {1000 / parse.rate:.2f} ms of CPU per message")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="messages in the corpus")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "mailgate-bench",
        help="where the peers' venvs live (default ~/.cache/mailgate-bench)",
    )
    parser.add_argument(
        "--skip-peers", action="store_true", help="only mail-parser and mailgate (quick)"
    )
    args = parser.parse_args()
    # Generous per-run bounds: Roundup files about 5 messages a second on this kind of box.
    fast_timeout, slow_timeout = 120 + args.count * 1.0, 300 + args.count * 3.0
    with tempfile.TemporaryDirectory(prefix="peers-corpus-") as tmp:
        mbox = write_mbox(Path(tmp) / "corpus.mbox", args.count, args.seed)
        corpus = list(messages(args.count, args.seed))
        total = sum(map(len, corpus))
        digest = hashlib.sha256(mbox.read_bytes()).hexdigest()[:16]
        corpus_line = (
            f"corpus: {len(corpus)} messages, seed {args.seed}, {total / 1e6:.1f} MB, "
            f"mean {total / max(1, len(corpus)) / 1e3:.1f} KB, mbox sha256 {digest}; "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        print(corpus_line, file=sys.stderr, flush=True)
        results: list[Measured | Skipped] = [
            _attempt("mail-parser", lambda: _mail_parser(corpus)),
            _attempt("mailgate", lambda: _mailgate(mbox, len(corpus), 1, fast_timeout)),
        ]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        if "--processes" in _ingest_help(env):
            results.append(
                _attempt(
                    "mailgate --processes 2",
                    lambda: _mailgate(mbox, len(corpus), 2, fast_timeout),
                )
            )
        if not args.skip_peers:
            results.append(
                _attempt(
                    "django-helpdesk",
                    lambda: _peers_django.measure(args.cache, corpus, fast_timeout),
                )
            )
            results.append(
                _attempt(
                    "Roundup mail gateway",
                    lambda: _peers_roundup.measure(args.cache, mbox, corpus, slow_timeout),
                )
            )
    _report(results, corpus_line)


if __name__ == "__main__":
    main()
