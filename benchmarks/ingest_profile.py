"""Issue 23's profile of a bulk import: time per stage, SQL statements and commits per
message, for `mailgate ingest --mbox` of peers.py's corpus in one process.

    python3 benchmarks/ingest_profile.py [--count 1000] [--seed 1] [--runs 3]

Each run imports the corpus (benchmarks/corpus.py, the same bytes as peers.py's) into a
new one-box default (`mailgate init`, SQLite, embedded queue, file outbox), migrated
before the clock starts, by the command's own code in this process: the `mailgate` click group
with ``ingest --quiet --mbox``. The stages are the functions the import calls, each timed
with ``perf_counter`` where ``mailgate.inbound.bulk`` calls it: the parse (``prepare``),
the durable store of the raw bytes (``accept_many``), the write side (``process_group``:
threads, tickets, rules, assignment, notices decided) and the sending of the notices
(``send_now``: composed and written to the outbox). Statements and commits are counted
with SQLAlchemy's engine events, across every engine. Prints the median of the runs.

The issue's own profile, before this work: 17 msg/s (about 59 ms a message), 34 SQL
statements and 4.7 commits per message.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

from corpus import write_mbox  # noqa: E402 - beside this file
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from mailgate.cli import cli  # noqa: E402
from mailgate.inbound import bulk  # noqa: E402 - after the path is set

STAGES = {
    "prepare": "parse (prepare)",
    "accept_many": "store the raw bytes (accept_many)",
    "process_group": "write side (process_group)",
    "send_now": "notices sent (send_now)",
}


def _timed(spent: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - started

    return timed


def one_run(mbox: Path, count: int) -> dict[str, float]:
    """One import into a new one-box folder: per stage and in all, ms per message;
    statements and commits per message."""
    spent: dict[str, float] = defaultdict(float)
    counted: dict[str, int] = defaultdict(int)

    def statement(*_: Any) -> None:
        counted["statements"] += 1

    def commit(*_: Any) -> None:
        counted["commits"] += 1

    with tempfile.TemporaryDirectory(prefix="ingest-profile-") as tmp:
        conf = Path(tmp) / "mailgate.toml"
        command = [sys.executable, "-m", "mailgate"]
        subprocess.run([*command, "init", str(conf)], check=True, capture_output=True, cwd=tmp)
        subprocess.run(
            [*command, "--config", str(conf), "db", "upgrade"],
            check=True,
            capture_output=True,
            cwd=tmp,
        )
        originals = {name: getattr(bulk, name) for name in STAGES}
        for name, fn in originals.items():
            setattr(bulk, name, _timed(spent, name, fn))
        event.listen(Engine, "before_cursor_execute", statement)
        event.listen(Engine, "commit", commit)
        started = time.perf_counter()
        try:
            cli.main(
                ["--config", str(conf), "ingest", "--quiet", "--mbox", str(mbox)],
                prog_name="mailgate",
                standalone_mode=False,
            )
        finally:
            total = time.perf_counter() - started
            event.remove(Engine, "before_cursor_execute", statement)
            event.remove(Engine, "commit", commit)
            for name, fn in originals.items():
                setattr(bulk, name, fn)
    figures = {STAGES[name]: spent[name] * 1000 / count for name in STAGES}
    figures["whole command, in process"] = total * 1000 / count
    figures["SQL statements per message"] = counted["statements"] / count
    figures["commits per message"] = counted["commits"] / count
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="messages in the corpus")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed")
    parser.add_argument("--runs", type=int, default=3, help="imports (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ingest-profile-corpus-") as tmp:
        mbox = write_mbox(Path(tmp) / "corpus.mbox", args.count, args.seed)
        runs = [one_run(mbox, args.count) for _ in range(args.runs)]
    print(f"ingest --mbox of {args.count} messages (seed {args.seed}), one process, median of "
          f"{args.runs} runs:")  # fmt: skip
    for name in runs[0]:
        value = statistics.median(run[name] for run in runs)
        unit = "" if "per message" in name else " ms per message"
        print(f"  {name:36s} {value:8.3f}{unit}")
    print("  (the issue's before: about 59 ms per message, 34 statements, 4.7 commits)")


if __name__ == "__main__":
    main()
