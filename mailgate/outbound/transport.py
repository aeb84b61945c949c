"""Where composed notices go: ``.eml`` files in a folder, or an SMTP smarthost.

A transport raises ``TemporaryFailure`` when a later try may work (4xx, connection
refused, timeout) and ``PermanentFailure`` with the server's reply for a 5xx.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from mailgate.core.errors import PermanentFailure, TemporaryFailure
from mailgate.core.settings import OutboundSettings, OutboundSmtpSettings


class Transport(Protocol):
    def send(
        self,
        notice_id: int,
        message: EmailMessage,
        *,
        sender: str,
        recipient: str,
        data: bytes | None = None,
    ) -> None:
        """Deliver ``message`` or raise TemporaryFailure / PermanentFailure. ``data``:
        the message already serialized, when the caller has it."""

    def close(self) -> None:
        """Release any connection kept open across a batch."""


# A write interrupted by a kill leaves its hidden temporary file; none takes this long,
# so one older than this is a leftover, never another process's write in progress.
STALE_TEMPORARY_SECONDS = 3600


class FileTransport:
    """One ``notice-<id>.eml`` per notice, written atomically: a resend overwrites.
    Readers take ``notice-*.eml`` only; ``.notice-*.tmp`` is a write in progress."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._swept = False

    def sweep(self, now: float | None = None) -> int:
        """Remove temporary files left by writes a kill interrupted; how many."""
        cutoff = (time.time() if now is None else now) - STALE_TEMPORARY_SECONDS
        removed = 0
        for leftover in self.folder.glob(".notice-*.tmp"):
            with contextlib.suppress(OSError):  # gone meanwhile: someone else swept it
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
                    removed += 1
        return removed

    def path_for(self, notice_id: int) -> Path:
        return self.folder / f"notice-{notice_id}.eml"

    def send(
        self,
        notice_id: int,
        message: EmailMessage,
        *,
        sender: str,
        recipient: str,
        data: bytes | None = None,
    ) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not self._swept:
                self._swept = True
                self.sweep()
            fd, tmp = tempfile.mkstemp(prefix=".notice-", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(bytes(message) if data is None else data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path_for(notice_id))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            # A full disk or a permission fixed later: retry, never drop.
            raise TemporaryFailure(f"cannot write to {self.folder}: {exc.strerror}") from exc

    def close(self) -> None:
        return None


class SmtpTransport:
    """A smarthost over SMTP with STARTTLS, implicit TLS or none, and optional AUTH.

    The connection is opened on the first send and reused until ``close`` (a batch).
    """

    def __init__(self, config: OutboundSmtpSettings) -> None:
        self.config = config
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        # Certificates are always verified; a private CA is added, never verification dropped.
        context = ssl.create_default_context(cafile=c.ca_file or None)
        conn: smtplib.SMTP
        if c.security == "tls":
            conn = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=context)
        else:
            conn = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
        try:
            if c.security == "starttls":
                conn.starttls(context=context)
            if c.username:
                conn.login(c.username, c.password)
        except BaseException:
            conn.close()  # a half-opened session is never reused
            raise
        return conn

    def send(
        self,
        notice_id: int,
        message: EmailMessage,
        *,
        sender: str,
        recipient: str,
        data: bytes | None = None,  # smtplib serializes itself (SMTPUTF8 or not)
    ) -> None:
        try:
            if self._conn is None:
                self._conn = self._connect()
            refused = self._conn.send_message(message, from_addr=sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _classify(code, reply) from exc
        except smtplib.SMTPAuthenticationError as exc:
            # A wrong password is the operator's to fix; the notices wait for it.
            self._drop()
            raise TemporaryFailure(f"smarthost refused our login: {exc.smtp_code}") from exc
        except smtplib.SMTPResponseException as exc:
            self._reset()
            raise _classify(exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise TemporaryFailure(f"smarthost unavailable: {type(exc).__name__}: {exc}") from exc
        if refused:
            code, reply = next(iter(refused.values()))
            raise _classify(code, reply)

    def _reset(self) -> None:
        # After a refused transaction the connection stays usable; RSET clears it.
        if self._conn is not None:
            try:
                self._conn.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                self._drop()


def _classify(code: int, reply: bytes | str) -> TemporaryFailure | PermanentFailure:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    message = f"{code} {text}".strip()
    # RFC 5321 §4.2.1: 4yz is transient, 5yz permanent.
    if 500 <= code < 600:
        return PermanentFailure(message)
    return TemporaryFailure(message)


def make_transport(outbound: OutboundSettings) -> Transport:
    """The transport ``outbound.transport`` names."""
    if outbound.transport == "smtp":
        return SmtpTransport(outbound.smtp)
    return FileTransport(outbound.folder)
