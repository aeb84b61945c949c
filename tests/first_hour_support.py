"""The first hour's helpers (tests/test_first_hour*.py): mailgate in-process and as a
real process, from a folder of the test's."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result

from mailgate.cli import cli as command

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def run(cwd: Path, *args: str, input: bytes | None = None) -> Result:
    """``mailgate ARGS`` in-process, from folder ``cwd`` (CliRunner keeps stderr apart)."""
    before = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(command, list(args), input=input)
    finally:
        os.chdir(before)


def mailgate(
    cwd: Path, *args: str, stdout: int = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    """``python3 -m mailgate ARGS``, a real process, from folder ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "mailgate", *args],
        cwd=cwd,
        env=ENV,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
