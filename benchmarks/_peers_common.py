"""Shared pieces of benchmarks/peers.py: results, bounded subprocesses, cached venvs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

# pip may take long on a cold cache, but never forever.
INSTALL_TIMEOUT = 1200.0
# A probe run in a peer's venv: prints "name==version" for each pinned distribution.
_PROBE = (
    "import importlib.metadata as m, sys\n"
    "for name in sys.argv[1:]:\n"
    "    try:\n"
    "        print(f'{name}=={m.version(name)}')\n"
    "    except m.PackageNotFoundError:\n"
    "        print(f'{name}==missing')\n"
)


class PeerError(Exception):
    """A peer could not be installed, set up or run; the message says why."""


@dataclass
class Measured:
    """One system's run over the corpus."""

    system: str
    version: str
    messages: int
    seconds: float
    check: str  # what was verified afterwards, in one line
    valid: bool = True  # False: the run did not do its work, so its rate means nothing

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Skipped:
    """A system that could not be measured, and why."""

    system: str
    reason: str


def run(
    cmd: list[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``cmd`` to completion within ``timeout`` seconds; PeerError if it fails."""
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        # subprocess.run kills the child on timeout, so nothing is left running.
        raise PeerError(f"{Path(cmd[0]).name} {cmd[1:3]} timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        raise PeerError(f"could not start {cmd[0]}: {exc}") from exc
    if done.returncode != 0:
        raise PeerError(
            f"{Path(cmd[0]).name} {' '.join(cmd[1:3])} exited {done.returncode}: "
            + tail(done.stderr or done.stdout)
        )
    return done


def tail(output: bytes, lines: int = 3) -> str:
    """The last few lines of a command's output, on one line, for an error message."""
    text = output.decode("utf-8", "replace").strip().splitlines()
    return " | ".join(line.strip() for line in text[-lines:]) or "(no output)"


def installed(python: Path, names: list[str]) -> dict[str, str]:
    """``{name: version}`` of distributions in the venv of ``python`` ("missing" if absent)."""
    done = run([str(python), "-c", _PROBE, *names], timeout=60)
    pairs = (line.split("==", 1) for line in done.stdout.decode().split())
    return {name: version for name, version in pairs}


def ensure_venv(cache: Path, name: str, pins: list[str]) -> tuple[Path, dict[str, str]]:
    """A venv at ``cache/name`` holding exactly ``pins`` (installed with pip when missing).

    Returns its python and the installed versions of the pinned distributions. A venv
    whose versions differ from the pins (an older run, a broken install) is rebuilt,
    so every run measures the same releases.
    """
    home = cache / name
    python = home / "bin" / "python"
    wanted = dict(pin.split("==", 1) for pin in pins)
    if python.exists():
        try:
            if installed(python, list(wanted)) == wanted:
                return python, wanted
        except PeerError:
            pass  # a broken venv: rebuilt below
        shutil.rmtree(home)
    print(f"  installing {' '.join(pins)} into {home} ...", file=sys.stderr, flush=True)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PeerError(f"could not create a venv at {home}: {exc}") from exc
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, *pins], timeout=INSTALL_TIMEOUT)
    versions = installed(python, list(wanted))
    if versions != wanted:
        raise PeerError(f"pip installed {versions}, not the pinned {wanted}")
    return python, versions
