"""The code stays as clean as the first commit left it: ruff, and strict mypy on every module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ruff_check_is_clean() -> None:
    """`ruff check .` reports nothing."""
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    """`ruff format --check .` would change nothing."""
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_passes_strict_mypy() -> None:
    """Every module but the frozen migrations type-checks under mypy --strict (the files
    pyproject.toml lists), with the SQLAlchemy the project requires."""
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
