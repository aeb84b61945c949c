"""`mailgate run` as a real process: roles as children, mail in, drain on SIGTERM, give-up."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

from mailgate.cli.run_cmd import chosen_roles
from mailgate.core.settings import ImapMailbox, ImapSettings, RunSettings, Settings
from mailgate.ops.supervisor import RestartPolicy, Role, Supervisor
from tests.conftest import SECRET
from tests.ports import free_port
from tests.servers import reachable
from tests.smtp_support import wait_until

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def write_config(tmp_path: Path, smtp_port: int, web_port: int, extra: str = "") -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
        f'[security]\nsecret = "{SECRET}"\n'
        f'[smtp]\nlisten = "127.0.0.1:{smtp_port}"\n'
        f'[web]\nlisten = "127.0.0.1:{web_port}"\n'
        f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n{extra}'
    )
    return path


def mailgate(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=config.parent,
    )


def ticket_list(config: Path) -> list[dict[str, object]]:
    out = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config), "tickets", "list", "--json"],
        capture_output=True,
        env=ENV,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_roles_follow_config_and_imap_needs_a_mailbox() -> None:
    """imap is supervised only when mailboxes are configured; run.roles chooses the rest."""
    assert chosen_roles(Settings()) == ["smtp", "worker", "web"]
    with_box = Settings(imap=ImapSettings(mailboxes=(ImapMailbox(name="support"),)))
    assert chosen_roles(with_box) == ["smtp", "imap", "worker", "web"]
    only = Settings(run=RunSettings(roles=("smtp", "worker")))
    assert chosen_roles(only) == ["smtp", "worker"]


def test_run_turns_mail_into_a_ticket_and_drains_on_sigterm(tmp_path: Path) -> None:
    """Mail sent to run's SMTP port becomes a ticket; SIGTERM stops every role and exits 0."""
    smtp_port, web_port = free_port(), free_port()
    config = write_config(tmp_path, smtp_port, web_port)
    proc = mailgate(config, "run")
    try:
        wait_listening(proc, smtp_port, web_port)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            client.sendmail(
                "carol@customer.test",
                ["support@example.com"],
                b"From: carol@customer.test\r\nTo: support@example.com\r\n"
                b"Subject: VPN is down\r\nMessage-ID: <run-1@customer.test>\r\n\r\nHelp.\r\n",
            )
        wait_until(lambda: len(ticket_list(config)) == 1, 30, "ticket created")
        assert ticket_list(config)[0]["subject"] == "VPN is down"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 0, err.decode()
    assert not reachable("127.0.0.1", smtp_port) and not reachable("127.0.0.1", web_port)


def wait_listening(proc: subprocess.Popen[bytes], smtp_port: int, web_port: int) -> None:
    """Until run's receiver and portal answer; if they never do, the failure shows what
    run wrote (a role that could not start says why there)."""
    try:
        wait_until(lambda: reachable("127.0.0.1", smtp_port), 30, "smtp role listening")
        wait_until(lambda: reachable("127.0.0.1", web_port), 30, "web role listening")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; mailgate run wrote:\n{stop(proc).decode()}") from None


def stop(proc: subprocess.Popen[bytes]) -> bytes:
    """Kill ``proc`` if it still runs; what is left of its stderr, with both pipes closed
    (a pipe left open is a ResourceWarning in whichever test the collector runs in)."""
    if proc.poll() is None:
        proc.kill()
    _, err = proc.communicate(timeout=60)
    return err or b""


def stderr_until_exit(proc: subprocess.Popen[bytes]) -> tuple[list[tuple[float, str]], float]:
    """Each stderr line with the time it came, and the time the stream ended (``run`` and
    every role it started are gone: they all write to it)."""
    assert proc.stderr is not None
    lines = [(time.monotonic(), raw.decode().rstrip("\n")) for raw in proc.stderr]
    ended = time.monotonic()
    proc.communicate(timeout=30)  # reads what is left of stdout and closes both pipes
    return lines, ended


def test_role_that_cannot_start_stops_run_at_once(tmp_path: Path) -> None:
    """With its web port taken, the web role exits 2 with one line saying so; run does not
    restart it (no restart frees a port): it stops every role within 2 s and exits 1
    (issue 25; it used to restart the role for about 50 s). A role that keeps dying for
    another reason is still restarted: tests/test_supervisor.py."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        web_port = int(taken.getsockname()[1])
        config = write_config(tmp_path, free_port(), web_port)
        proc = mailgate(config, "run")
        try:
            lines, ended = stderr_until_exit(proc)
        finally:
            stop(proc)
    text = "\n".join(line for _, line in lines)
    assert proc.returncode == 1, text
    error = f"mailgate: {config}: web.listen: cannot listen on 127.0.0.1:{web_port}: Address already in use"
    said = [at for at, line in lines if line == error]
    assert len(said) == 1, text  # started once, never again
    assert ended - said[0] < 2.0, text
    assert "exited more than" not in text and "Traceback" not in text


def test_a_second_run_on_busy_ports_stops_at_once(tmp_path: Path) -> None:
    """A second `mailgate run` with the same config: its receiver and portal find their
    ports taken; it says so once and exits 1 within 2 s, and the first run carries on."""
    smtp_port, web_port = free_port(), free_port()
    config = write_config(tmp_path, smtp_port, web_port)
    first = mailgate(config, "run")
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_listening(first, smtp_port, web_port)
        second = mailgate(config, "run")
        lines, ended = stderr_until_exit(second)
        text = "\n".join(line for _, line in lines)
        assert second.returncode == 1, text
        busy = [(at, line) for at, line in lines if "cannot listen on" in line]
        assert busy, text
        assert len({line for _, line in busy}) == len(busy), text  # no role started twice
        assert {line for _, line in busy} <= {
            f"mailgate: {config}: smtp.listen: cannot listen on 127.0.0.1:{smtp_port}: "
            "Address already in use",
            f"mailgate: {config}: web.listen: cannot listen on 127.0.0.1:{web_port}: "
            "Address already in use",
        }, text
        assert ended - busy[0][0] < 2.0, text
        assert first.poll() is None
        assert reachable("127.0.0.1", smtp_port) and reachable("127.0.0.1", web_port)
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err.decode()
    finally:
        for proc in (first, second):
            if proc is not None:
                stop(proc)


def test_roles_have_their_own_process_group(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches only the supervisor: each role runs in its own process group."""
    out = tmp_path / "pgid"
    code = f"import os,pathlib; pathlib.Path({str(out)!r}).write_text(str(os.getpgid(0)))"
    sup = Supervisor(
        [Role("once", (sys.executable, "-c", code))],
        policy=RestartPolicy(max_deaths=0, base_delay=0.01, max_delay=0.01),
    )
    assert sup.run() == 1  # it exits at once: dying repeatedly with max_deaths = 0
    assert int(out.read_text()) not in (os.getpgid(0), 0)
