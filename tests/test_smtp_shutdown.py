"""`mailgate smtp` as a real process: start-up line, SIGTERM mid-transaction, clean errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import SECRET
from tests.smtp_support import (
    SUPPORT,
    RawClient,
    count,
    message,
    rows,
    smtp_settings,
    wait_until,
)

REPO = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+) ")


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    port: int = 0
    lines: list[str] = field(default_factory=list)


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
        f'[security]\nsecret = "{SECRET}"\n'
        f'[smtp]\nlisten = "127.0.0.1:0"\n{extra}'
    )
    return path


def _run(config: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(config), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=config.parent,
    )


@contextmanager
def mailgate_smtp(config: Path) -> Iterator[Process]:
    """`mailgate smtp` in a child process; yields once its start-up line names the port."""
    running = Process(_run(config, "smtp"))
    ready = threading.Event()

    def read_stderr() -> None:
        assert running.proc.stderr is not None
        for raw in running.proc.stderr:
            line = raw.decode(errors="replace")
            running.lines.append(line)
            found = LISTENING.search(line)
            if found:
                running.port = int(found.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read_stderr)
    reader.start()
    try:
        assert ready.wait(30) and running.port, "".join(running.lines)
        yield running
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
        running.proc.wait(timeout=30)
        reader.join(timeout=30)
        assert running.proc.stderr is not None
        running.proc.stderr.close()


def _begin_data(client: RawClient) -> None:
    assert client.reply()[0] == 220
    for command, code in (
        (b"EHLO c.test", 250),
        (b"MAIL FROM:<alice@customer.test>", 250),
        (f"RCPT TO:<{SUPPORT}>".encode(), 250),
        (b"DATA", 354),
    ):
        client.send(command + b"\r\n")
        assert client.reply()[0] == code


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_lets_the_transaction_in_flight_finish(tmp_path: Path) -> None:
    """SIGTERM mid-DATA: listener closed, idle client told 421, DATA still gets 250, exit 0."""
    config = _config(tmp_path)
    body = message(1)
    with (
        mailgate_smtp(config) as server,
        RawClient("127.0.0.1", server.port) as busy,
        RawClient("127.0.0.1", server.port) as idle,
    ):
        _begin_data(busy)
        assert idle.reply()[0] == 220
        busy.send(body[:50])
        server.proc.send_signal(signal.SIGTERM)
        code, lines = idle.reply()
        assert code == 421 and lines[0].startswith("4.3.2")
        assert idle.closed_by_server()
        assert _refused(server.port)  # the drain starts after the listener is closed
        busy.send(body[50:] + b".\r\n")
        code, lines = busy.reply()
        assert code == 250, lines
        assert busy.reply()[0] == 421  # and then goodbye: the transaction was the last
        assert busy.closed_by_server()
        assert server.proc.wait(timeout=30) == 0
    assert "stopped" in server.lines[-1]
    [row] = rows(smtp_settings(f"sqlite:///{tmp_path / 'm.db'}"))
    assert row.raw.endswith(body)
    assert row.state == "processed"


def test_second_signal_cuts_off_a_stalled_transaction(tmp_path: Path) -> None:
    """A client that never finishes DATA does not hold shutdown hostage: SIGINT twice ends it."""
    config = _config(tmp_path)
    with mailgate_smtp(config) as server, RawClient("127.0.0.1", server.port) as stalled:
        _begin_data(stalled)
        stalled.send(message(1)[:50])
        server.proc.send_signal(signal.SIGINT)
        # The first signal has been handled once the listener refuses connections.
        wait_until(lambda: _refused(server.port), timeout=30, what="the listener to close")
        server.proc.send_signal(signal.SIGINT)
        assert stalled.closed_by_server()
        assert server.proc.wait(timeout=30) == 0
    assert count(smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")) == 0


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'tls = "starttls"\ntls_cert = "/nonexistent.pem"\ntls_key = "/nonexistent.key"\n',
            "smtp.tls_cert: cannot load /nonexistent.pem",
        ),
        ('auth_username = "relay"\nauth_password = "x"\n', "smtp.auth_username: needs smtp.tls"),
    ],
)
def test_config_mistakes_are_one_clean_line(tmp_path: Path, extra: str, expected: str) -> None:
    """A bad [smtp] setting stops `mailgate smtp` with a `mailgate: ...` line, no traceback."""
    proc = _run(_config(tmp_path, extra), "smtp")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert expected in err.decode() and err.decode().startswith("mailgate: ")
    assert "Traceback" not in err.decode()


def test_port_in_use_is_one_clean_line(tmp_path: Path) -> None:
    """Listening on a taken port names smtp.listen and exits without a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = _config(tmp_path)
        config.write_text(config.read_text().replace("127.0.0.1:0", f"127.0.0.1:{port}"))
        proc = _run(config, "smtp")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"smtp.listen: cannot listen on 127.0.0.1:{port}" in err.decode()
    assert "Traceback" not in err.decode()
