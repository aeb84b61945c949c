"""Open an authenticated IMAP connection for one configured mailbox.

Transport: implicit TLS (port 993), STARTTLS (RFC 3501 §6.2.1, port 143) or
plain. Authentication: LOGIN with a password, or XOAUTH2 with a bearer token
read from the environment variable the mailbox names. Every failure becomes
one of two errors, by what the caller must do: retry soon, or wait for a human.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
from collections.abc import Mapping

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from mailgate.core.errors import TemporaryFailure
from mailgate.core.settings import ImapMailbox

CONNECT_TIMEOUT = 30.0
# A server answering one command slower than this is treated as gone. IDLE
# waits do not count: imapclient polls the socket itself during IDLE.
READ_TIMEOUT = 180.0
_BYTES_REPR = re.compile(r"\bb'(.*?)'")
# Errors that mean "the connection is unusable": reconnect.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, IMAPClientAbortError)


class ImapUnavailable(TemporaryFailure):
    """Raised when the server cannot be reached, drops the connection or fails a
    command: reconnect after an exponential backoff."""


class ImapRefused(TemporaryFailure):
    """Raised when the server refuses this mailbox's configuration: credentials,
    token, TLS certificate, STARTTLS or folder. Retrying soon cannot help; retry
    after a long pause, so a wrong password never hammers the server."""


def describe(exc: BaseException) -> str:
    """A one-line reason from an OS or IMAP error, without Python noise."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    arg = exc.args[0] if exc.args else ""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    # imaplib quotes server replies as Python bytes inside its own messages.
    text = _BYTES_REPR.sub(r"\1", text).strip()
    return text or type(exc).__name__


def connect(box: ImapMailbox, *, env: Mapping[str, str] | None = None) -> IMAPClient:
    """A logged-in client for ``box``, no folder selected.

    Raises ``ImapUnavailable`` (network) or ``ImapRefused`` (configuration).
    Never logs or raises the password or token.
    """
    env = os.environ if env is None else env
    where = f"mailbox {box.name}: {box.host}:{box.port}"
    secret = _secret(box, env)
    context = ssl.create_default_context()
    try:
        client = IMAPClient(
            box.host,
            box.port,
            ssl=box.security == "tls",
            ssl_context=context if box.security == "tls" else None,
            timeout=SocketTimeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        )
    except NETWORK_ERRORS as exc:
        raise _failure(exc, where, box) from None
    try:
        if box.security == "starttls":
            if not client.has_capability("STARTTLS"):
                raise ImapRefused(f"{where}: security is starttls, the server offers no STARTTLS")
            client.starttls(context)
        if box.oauth2_token_env:
            client.oauth2_login(box.username, secret)
        else:
            client.login(box.username, secret)
    except (ImapRefused, IMAPClientError, *NETWORK_ERRORS) as exc:
        close(client, polite=False)
        raise _failure(exc, where, box) from None
    return client


def _failure(exc: BaseException, where: str, box: ImapMailbox) -> TemporaryFailure:
    """What an error while connecting or logging in means for the caller."""
    if isinstance(exc, ImapRefused):
        return exc
    if isinstance(exc, LoginError):
        return ImapRefused(f"{where}: login refused for user {box.username!r}: {describe(exc)}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ImapRefused(f"{where}: {describe(exc)}")
    if isinstance(exc, IMAPClientError):
        return ImapUnavailable(f"{where}: {describe(exc)}")
    return ImapUnavailable(f"{where}: cannot connect: {describe(exc)}")


def _secret(box: ImapMailbox, env: Mapping[str, str]) -> str:
    where = f"mailbox {box.name}"
    if box.oauth2_token_env:
        token = env.get(box.oauth2_token_env, "")
        if not token:
            raise ImapRefused(
                f"{where}: oauth2_token_env names ${box.oauth2_token_env}, which is not set"
            )
        return token
    if not box.password:
        raise ImapRefused(
            f"{where}: no password (set password, $MAILGATE_IMAP_"
            f"{box.name.upper().replace('-', '_')}_PASSWORD or oauth2_token_env)"
        )
    return box.password


def close(client: IMAPClient, *, polite: bool = True) -> None:
    """Log out (RFC 3501 §6.1.3) when ``polite``, else just drop the connection:
    after an error the server may never answer a LOGOUT."""
    if polite:
        try:
            client.logout()
        except Exception:  # noqa: BLE001, S110 - the server may be gone already; drop it below
            pass
        else:
            return
    # Closing a dead socket may fail any way it likes; it is closed either way.
    with contextlib.suppress(Exception):
        client.shutdown()
