"""`mailgate run`'s supervisor: real child processes, restarts, give-up, drain, systemd notify."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mailgate.ops.supervisor import RestartPolicy, Role, Supervisor, dying_repeatedly

FAST = RestartPolicy(max_deaths=3, window=30.0, base_delay=0.01, max_delay=0.05)


def py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


@pytest.mark.parametrize(
    ("deaths", "now", "expected"),
    [
        ([], 100.0, False),
        ([99.0, 98.0, 97.0], 100.0, False),
        ([99.0, 98.0, 97.0, 96.0], 100.0, True),
        ([10.0, 11.0, 12.0, 99.0], 100.0, False),  # old deaths fall out of the window
    ],
)
def test_dying_repeatedly(deaths: list[float], now: float, expected: bool) -> None:
    """More than max_deaths within the window is dying repeatedly; older deaths do not count."""
    assert dying_repeatedly(deaths, now, FAST) is expected


def test_role_that_keeps_dying_stops_everything_with_exit_1(tmp_path: Path) -> None:
    """A role that exits again and again makes run() stop the healthy role too and return 1."""
    marker = tmp_path / "healthy-stopped"
    healthy = py(
        "import signal,sys,time,pathlib\n"
        f"signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path({str(marker)!r}).write_text('x'), sys.exit(0)))\n"
        "time.sleep(60)"
    )
    sup = Supervisor(
        [Role("healthy", healthy), Role("broken", py("raise SystemExit(3)"))], policy=FAST
    )
    assert sup.run() == 1
    assert marker.read_text() == "x"


def test_role_restarted_after_a_crash(tmp_path: Path) -> None:
    """A role that crashes once is started again and keeps running."""
    counter = tmp_path / "starts"
    code = (
        "import pathlib,sys,time\n"
        f"p=pathlib.Path({str(counter)!r}); n=int(p.read_text() or 0) if p.exists() else 0\n"
        "p.write_text(str(n+1))\n"
        "sys.exit(1) if n == 0 else time.sleep(60)"
    )
    sup = Supervisor([Role("flaky", py(code))], policy=FAST)
    runner = threading.Thread(target=lambda: setattr(sup, "code", sup.run()))
    runner.start()
    for _ in range(200):
        if counter.exists() and counter.read_text() == "2":
            break
        threading.Event().wait(0.05)
    sup.stopping.set()
    runner.join(timeout=30)
    assert counter.read_text() == "2" and sup.code == 0  # type: ignore[attr-defined]


def test_role_exiting_with_a_fatal_code_is_not_restarted(tmp_path: Path) -> None:
    """A role that exits with one of fatal_codes (mailgate run: EX_CONFIG, 2) stops
    everything at once, started only once, and run() returns 1 naming it (issue 25);
    another code is still restarted (the test above)."""
    counter = tmp_path / "starts"
    marker = tmp_path / "healthy-stopped"
    healthy = py(
        "import signal,sys,time,pathlib\n"
        f"signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path({str(marker)!r}).write_text('x'), sys.exit(0)))\n"
        "time.sleep(60)"
    )
    broken = py(
        f"import pathlib; p=pathlib.Path({str(counter)!r}); "
        "p.write_text(p.read_text() + 'x' if p.exists() else 'x'); raise SystemExit(2)"
    )
    sup = Supervisor(
        [Role("healthy", healthy), Role("broken", broken)],
        policy=FAST,
        fatal_codes=frozenset({2}),
    )
    started = time.monotonic()
    assert sup.run() == 1
    assert time.monotonic() - started < 10
    assert (sup.failed, sup.fatal_code) == ("broken", 2)
    assert counter.read_text() == "x" and marker.read_text() == "x"


def test_stop_drains_roles_and_notifies_systemd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On stop, every role gets SIGTERM and is waited for; READY=1 and STOPPING=1 reach $NOTIFY_SOCKET."""
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    done, started = tmp_path / "drained", tmp_path / "started"
    role = py(
        "import signal,sys,time,pathlib\n"
        "def stop(*a):\n"
        "    time.sleep(0.3)  # work in hand finishes\n"
        f"    pathlib.Path({str(done)!r}).write_text('ok'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"pathlib.Path({str(started)!r}).write_text('1')\ntime.sleep(60)"
    )
    sup = Supervisor([Role("worker", role)], policy=FAST)
    runner = threading.Thread(target=lambda: setattr(sup, "code", sup.run()))
    runner.start()
    assert server.recv(64) == b"READY=1"
    for _ in range(200):  # the role has installed its SIGTERM handler
        if started.exists():
            break
        threading.Event().wait(0.05)
    sup.stopping.set()
    assert server.recv(64) == b"STOPPING=1"
    runner.join(timeout=30)
    server.close()
    assert sup.code == 0 and done.read_text() == "ok"  # type: ignore[attr-defined]


def _gone(pid: int) -> bool:
    """No such process, or only a zombie left for its new parent to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_roles_die_when_the_supervisor_is_sigkilled(tmp_path: Path) -> None:
    """A SIGKILLed supervisor runs no cleanup; its roles must not live on as orphans."""
    pid_file = tmp_path / "role.pid"
    role = py(
        f"import os,pathlib,time; pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(120)"
    )
    supervisor = subprocess.Popen(
        py(
            "from mailgate.ops.supervisor import Role, Supervisor\n"
            f"Supervisor([Role('sleeper', {role!r})]).run()"
        ),
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        for _ in range(600):
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.05)
        role_pid = int(pid_file.read_text())
        assert not _gone(role_pid)
        supervisor.kill()
        supervisor.wait(timeout=30)
        for _ in range(200):
            if _gone(role_pid):
                break
            time.sleep(0.05)
        else:
            os.kill(role_pid, signal.SIGKILL)
            raise AssertionError("the role outlived its SIGKILLed supervisor")
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()


def test_a_child_whose_parent_is_already_gone_exits_at_once() -> None:
    """The race: the parent died before the death signal was asked for; the child sees
    it has been re-parented and exits instead of living on."""
    child = subprocess.run(
        py(
            "from mailgate.ops.lifeline import die_with_parent\ndie_with_parent(-1)\nprint('alive')"
        ),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        timeout=60,
        check=False,
    )
    assert child.returncode == 1 and "alive" not in child.stdout
