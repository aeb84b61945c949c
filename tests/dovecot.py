"""A throwaway Dovecot IMAP server on a free loopback port, for tests.

Each instance has its own config, passwd-file users, Maildirs, runtime and log
directory under a temporary folder; nothing touches the system's Dovecot.
Skips when the binary is missing on a laptop, fails in CI (CI=true).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.ports import free_port
from tests.servers import IN_CI

PASSWORD = "s3cret-pass"  # a throwaway test account
TOKEN = "ya29.test-oauth2-token"  # XOAUTH2 bearer token of the test account


def binary() -> str | None:
    """Path of the dovecot binary, or None."""
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)),
        None,
    )


def require_binary() -> str:
    """The dovecot binary; skip the test without it on a laptop, fail in CI."""
    found = binary()
    if found:
        return found
    message = "dovecot is not installed (apt-get install dovecot-imapd)"
    if IN_CI:
        pytest.fail(f"{message}; CI must provide it (.ci/run installs it)")
    pytest.skip(message)


def wait_until(check: Callable[[], object], *, timeout: float = 10.0, what: str = "") -> object:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(0.02)


def _openssl_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl ships with dovecot-core)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class Dovecot:
    """One Dovecot process. ``port`` is plain IMAP (STARTTLS offered when ``tls``),
    ``tls_port`` implicit TLS; users log in with ``PASSWORD`` or XOAUTH2 ``TOKEN``."""

    def __init__(
        self,
        *,
        users: Iterable[str] = ("support",),
        tls: bool = False,
        capabilities: str = "",
    ) -> None:
        self.binary = require_binary()
        self.root = Path(tempfile.mkdtemp(prefix="mailgate-dovecot-"))
        self.root.chmod(0o755)  # the mail user must reach its Maildir below
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.cert: Path | None = None
        self.users = tuple(users)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.root / "dovecot.log"
        (self.root / "mail").mkdir()
        uid, gid, internal, login = self._identity()
        self.uid, self.gid = uid, gid
        os.chown(self.root / "mail", uid, gid)
        # XOAUTH2 hands the bearer token to the passdb as the password, so a
        # second entry per user makes the token valid too.
        lines = []
        for user in self.users:
            lines.append(f"{user}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{self.root / 'mail' / user}")
        (self.root / "users").write_text("\n".join(lines) + "\n")
        (self.root / "tokens").write_text(
            "".join(f"{u}:{{PLAIN}}{TOKEN}:{uid}:{gid}::{self.root / 'mail' / u}\n" for u in users)
        )
        ssl_lines = "ssl = no"
        if tls:
            self.cert, key = _openssl_cert(self.root)
            ssl_lines = f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{key}"
        capability_line = f"imap_capability = {capabilities}" if capabilities else ""
        chroot = "" if os.geteuid() == 0 else "  chroot =\n"
        (self.root / "dovecot.conf").write_text(
            _CONFIG.format(
                root=self.root,
                port=self.port,
                tls_port=self.tls_port,
                internal=internal,
                login=login,
                ssl=ssl_lines,
                capability=capability_line,
                chroot=chroot,
            )
        )

    @staticmethod
    def _identity() -> tuple[int, int, str, str]:
        """(mail uid, gid, internal user, login user): Dovecot refuses mail access as root."""
        if os.geteuid() != 0:
            me = pwd.getpwuid(os.geteuid()).pw_name
            return os.geteuid(), os.getegid(), me, me
        for name in ("dovecot", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            login = "dovenull" if _user_exists("dovenull") else name
            return entry.pw_uid, entry.pw_gid, name, login
        pytest.fail("no unprivileged user (dovecot or nobody) to run Dovecot's mail processes")

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.root / "dovecot.conf")],
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own process group, so cleanup can end Dovecot and its children at once.
                start_new_session=True,
            )
        try:
            wait_until(self._accepting, timeout=15, what="dovecot to accept connections")
        except AssertionError:
            self.stop()
            raise AssertionError(f"dovecot did not start:\n{self.log.read_text()}") from None

    def _accepting(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"dovecot exited:\n{self.log.read_text()}")
        try:
            with IMAPClient("127.0.0.1", self.port, ssl=False, timeout=2) as client:
                return bool(client.capabilities())
        except OSError:
            return False

    def stop(self) -> None:
        """Shut Dovecot down and end every session it had, as a server restart does.

        The master is asked politely (SIGTERM); IMAP sessions that outlive it
        (Dovecot lets running sessions finish) are then killed with the group.
        """
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Kill this Dovecot's process group (its data is thrown away) and delete it all."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers for tests ------------------------------------------------------

    def client(self, user: str = "support") -> IMAPClient:
        """A logged-in plain-text client (Dovecot allows it on loopback here)."""
        client = IMAPClient("127.0.0.1", self.port, ssl=False, timeout=10)
        client.login(user, PASSWORD)
        return client

    def append(self, folder: str, messages: Iterable[bytes], user: str = "support") -> None:
        """APPEND each message to ``folder`` (created when missing), one connection."""
        with self.client(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in messages:
                client.append(folder, raw)

    def count(self, folder: str, user: str = "support") -> int:
        """Messages in ``folder`` (0 when it does not exist)."""
        with self.client(user) as client:
            if not client.folder_exists(folder):
                return 0
            return int(client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"])

    def auth_failures(self) -> int:
        """How many failed logins Dovecot has logged."""
        return self.log.read_text(errors="replace").count("auth failed")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = 1
# Notice new mail in IDLE at once even where inotify is unavailable.
mailbox_idle_check_interval = 1 secs
{capability}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {root}/users
}}
passdb {{
  driver = passwd-file
  mechanisms = xoauth2
  args = scheme=PLAIN username_format=%u {root}/tokens
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
"""
