"""Throwaway servers for the fault suite: Redis, RabbitMQ and PostgreSQL.

The outage tests stop and crash Redis, RabbitMQ and PostgreSQL, so each test gets
instances of its own on free loopback ports, in temporary folders: the shared
servers (PostgreSQL 5432, Redis 6379, RabbitMQ 5672) are never touched. A missing
binary skips the test on a laptop and fails it in CI (``CI=true``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.faults.support import free_port, wait_for
from tests.servers import IN_CI, reachable

STARTUP_SECONDS = 90.0


def require_binary(name: str, *candidates: str, install: str) -> str:
    """The path of ``name`` (on PATH or one of ``candidates``, globs allowed); skip the
    test without it on a laptop, fail in CI."""
    for pattern in candidates:
        for path in sorted(glob.glob(pattern), reverse=True):  # newest version first
            if os.access(path, os.X_OK):
                return path
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed ({install})"
    if IN_CI:
        pytest.fail(f"{message}; CI must provide it (.ci/run installs it)")
    pytest.skip(message)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while not reachable("127.0.0.1", port, timeout=0.5):
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited {proc.returncode}: {_tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not listening after {STARTUP_SECONDS}s: {_tail(log)}")
        time.sleep(0.05)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Daemon:
    """A server run in the foreground in a process group of its own, so a SIGKILL
    takes the whole server (RabbitMQ's Erlang VM and its helpers) at once."""

    name = "server"

    def __init__(self, prefix: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.port = free_port()
        self.log = self.root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.start_seconds: list[float] = []

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        began = time.monotonic()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                cwd=self.root,
                start_new_session=True,
            )
        _wait_listening(self.port, self.proc, self.log, self.name)
        self.starts += 1
        self.start_seconds.append(time.monotonic() - began)

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, what a power cut or the OOM killer does."""
        assert self.proc is not None
        self._kill_group()
        self._wait_closed()

    def _kill_group(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """A clean stop (the server's own shutdown)."""
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self._wait_closed()

    def _wait_closed(self) -> None:
        wait_for(
            lambda: not reachable("127.0.0.1", self.port, timeout=0.2),
            timeout=30,
            what=f"{self.name} port {self.port} to close",
        )

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._kill_group()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer(_Daemon):
    """``redis-server`` without persistence: a restart comes back empty, so every
    queued id is gone and only the reconciler can bring the work back."""

    name = "redis-server"

    def __init__(self) -> None:
        self.binary = require_binary("redis-server", install="apt-get install redis-server")
        super().__init__("mailgate-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        # "--save ''" on the command line: no RDB snapshots, nothing survives a restart.
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.root),
        ]


class RabbitServer(_Daemon):
    """A second RabbitMQ node (own name, ports, Mnesia and cookie), no plugins."""

    name = "rabbitmq-server"

    def __init__(self) -> None:
        self.binary = require_binary(
            "rabbitmq-server",
            # The Debian wrapper on PATH re-runs itself as user rabbitmq with the
            # system paths; the real script honours the RABBITMQ_* variables below.
            "/usr/lib/rabbitmq/bin/rabbitmq-server",
            install="apt-get install rabbitmq-server",
        )
        self.ctl = str(Path(self.binary).with_name("rabbitmqctl"))
        super().__init__("mailgate-rabbit-")
        self.dist_port = free_port()
        self.node = f"mgfault-{self.root.name.rsplit('-', 1)[-1].lower()}@localhost"
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")
        (self.root / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def command(self) -> list[str]:
        return [self.binary]

    def environment(self) -> dict[str, str]:
        root = str(self.root)
        return {
            **os.environ,
            "HOME": root,  # the Erlang cookie lives here, shared with rabbitmqctl
            "RABBITMQ_CONF_ENV_FILE": f"{root}/rabbitmq-env.conf",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": f"{root}/mnesia",
            "RABBITMQ_LOG_BASE": f"{root}/log",
            "RABBITMQ_CONFIG_FILE": f"{root}/rabbitmq.conf",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{root}/enabled_plugins",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def stop(self) -> None:
        """``rabbitmqctl stop``: the node closes its connections and halts."""
        assert self.proc is not None
        done = subprocess.run(
            [self.ctl, "-n", self.node, "stop"],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"rabbitmqctl stop: {done.stdout}{done.stderr}"
        self.proc.wait(timeout=60)
        self._wait_closed()


class PostgresServer:
    """A PostgreSQL cluster of its own (initdb), started with ``pg_ctl``. ``crash`` is
    ``pg_ctl stop -m immediate``: every backend dies, the next start recovers from WAL."""

    def __init__(self) -> None:
        initdb = require_binary(
            "initdb",
            "/usr/lib/postgresql/*/bin/initdb",
            install="apt-get install postgresql",
        )
        self.bindir = Path(initdb).parent
        self.root = Path(tempfile.mkdtemp(prefix="mailgate-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "server.log"
        self.starts = 0
        self.start_seconds: list[float] = []
        self.running = False
        # initdb and postgres refuse to run as root.
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
            user=self.user,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)}: {done.stdout}{done.stderr}")
        return done

    def start(self) -> None:
        began = time.monotonic()
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        self.running = True
        self.starts += 1
        self.start_seconds.append(time.monotonic() - began)

    def crash(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self.running = False

    def cleanup(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
                user=self.user,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)
