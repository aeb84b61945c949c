"""One SMTP or LMTP connection: aiosmtpd's protocol with mailgate's limits and drain.

``Gate`` admits connections (``max_connections``, ``max_connections_per_ip``) and,
at shutdown, closes idle ones while letting transactions in flight finish. Each session
is held to ``limits.SessionLimits``: failed AUTH, idle commands and its lifetime.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, AnyStr

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, syntax

from mailgate.db.rejection_counts import RejectionCounter
from mailgate.inbound.smtp.addresses import plain_address
from mailgate.inbound.smtp.handler import STORED, client_ip
from mailgate.inbound.smtp.limits import AuthFailures, SessionLimits

# RFC 5321 §3.8 and §4.2.3: 421 closes the connection.
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
TOO_MANY_FROM_CLIENT = "421 4.7.0 Too many connections from your address, try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
# Issue 19: guessing passwords, and holding a slot without moving mail.
AUTH_TOO_MANY = "421 4.7.0 Too many failed authentication attempts, closing connection"
AUTH_LOCKED_OUT = (
    "421 4.7.0 Too many failed authentication attempts from your address, try again later"
)
TOO_MANY_IDLE = "421 4.7.0 Too many commands without mail, closing connection"
SESSION_TOO_LONG = "421 4.7.0 Session time limit reached, closing connection"
# Commands that move no mail; a greeting too once the session has had one (the EHLO
# after STARTTLS starts a new session, RFC 3207 §4.2). Any other command answered
# 500-504 (unknown, out of order, malformed) counts as well.
_IDLE_COMMANDS = frozenset({"NOOP", "RSET", "HELP", "VRFY", "EXPN"})
_GREETINGS = frozenset({"HELO", "EHLO", "LHLO"})
_BAD_COMMAND = ("500 ", "501 ", "502 ", "503 ", "504 ")
_STORED = STORED.split("{", 1)[0]

# aiosmtpd's own replies, given enhanced codes (RFC 3463 §3.4: 5.3.4 message too big).
_REWRITTEN = {
    "552 Error: Too much mail data": "552 5.3.4 Message too big for this system",
    "552 Error: message size exceeds fixed maximum message size": (
        "552 5.3.4 Message size exceeds fixed maximum message size"
    ),
}
# aiosmtpd answers these at the end of DATA; LMTP needs one answer per recipient.
_END_OF_DATA = {"552 5.3.4 Message too big for this system", "500 Line too long"}
# Refusals counted for /metrics, by how the reply starts (after _REWRITTEN). Replies to
# commands out of order or unknown (503, 500, 502) refuse no mail and are not counted.
_REFUSALS = (
    ("550 5.1.1 ", "relay_denied"),
    ("452 4.5.3 ", "too_many_recipients"),
    ("552 ", "too_big"),
    ("500 Line too long", "line_too_long"),
    ("554 5.6.0 ", "not_an_email"),
    ("501 Syntax: MAIL", "syntax"),
    ("501 Syntax: RCPT", "syntax"),
    ("553 5.1.3 ", "syntax"),
    ("555 ", "syntax"),
    ("530 5.7.0 Authentication required", "auth_required"),
    ("535 ", "auth_failed"),
    ("421 4.7.0 Too many failed authentication", "auth_throttled"),
    ("421 4.7.0 Too many commands without mail", "idle_commands"),
    ("421 4.7.0 Session time limit", "session_too_long"),
    ("451 4.3.0 Could not store", "storage_unavailable"),
    ("451 4.3.0 Internal error", "internal_error"),
)
_AT_CONNECT = {
    TOO_MANY_CONNECTIONS: "connection_limit",
    TOO_MANY_FROM_CLIENT: "client_limit",
    SHUTTING_DOWN: "shutting_down",
}


def refusal_reason(reply: str) -> str | None:
    """The rejection reason a reply counts as, or None when it refuses no mail."""
    if reply[:1] in ("2", "3"):
        return None  # most replies: said on every command, so answered first
    for start, reason in _REFUSALS:
        if reply.startswith(start):
            return reason
    return None


class Gate:
    """The live connections of one listener, on its event loop (no locks needed)."""

    def __init__(self, *, max_connections: int, max_per_ip: int) -> None:
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.draining = False
        self._live: dict[SMTPProtocol, str] = {}
        self._per_ip: Counter[str] = Counter()
        self._empty: asyncio.Event | None = None

    def __len__(self) -> int:
        return len(self._live)

    def connections(self) -> list[SMTPProtocol]:
        """The admitted connections, now."""
        return list(self._live)

    def admit(self, conn: SMTPProtocol, ip: str) -> str | None:
        """Register ``conn``; or the 421 reply that refuses it."""
        if self.draining:
            return SHUTTING_DOWN
        if len(self._live) >= self.max_connections:
            return TOO_MANY_CONNECTIONS
        if self._per_ip[ip] >= self.max_per_ip:
            return TOO_MANY_FROM_CLIENT
        self._live[conn] = ip
        self._per_ip[ip] += 1
        return None

    def release(self, conn: SMTPProtocol) -> None:
        """Forget ``conn``; safe to call twice (aiosmtpd may report a loss twice)."""
        ip = self._live.pop(conn, None)
        if ip is None:
            return
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]
        if not self._live and self._empty is not None:
            self._empty.set()

    async def drain(self, timeout: float | None) -> int:
        """Refuse new connections, close idle ones now and the others as soon as their
        transaction ends; after ``timeout`` seconds abort what is left. Returns how many
        connections had to be aborted."""
        self.draining = True
        self._empty = asyncio.Event()
        for conn in list(self._live):
            if not conn.in_transaction:
                conn.goodbye()
        if not self._live:
            return 0
        try:
            await asyncio.wait_for(self._empty.wait(), timeout)
            return 0
        except TimeoutError:
            return self.abort()

    def abort(self) -> int:
        """Drop every connection at once (a second signal, or the drain timed out)."""
        left = list(self._live)
        for conn in left:
            conn.abort()
        return len(left)


class SMTPProtocol(SMTP):
    """aiosmtpd's SMTP session plus admission control, a DATA timeout, the drain and the
    session limits (failed AUTH, idle commands, lifetime)."""

    def __init__(
        self,
        handler: Any,
        *,
        gate: Gate,
        data_timeout: float,
        implicit_tls: bool,
        rejections: RejectionCounter,
        limits: SessionLimits,
        auth_failures: AuthFailures,
        **kwargs: Any,
    ) -> None:
        # aiosmtpd keeps these limits in a dict shared by every connection, cleared by
        # each new one and raised by each EHLO: one connection's own, set first.
        self.command_size_limits = defaultdict(lambda: SMTP.command_size_limit)
        super().__init__(handler, **kwargs)
        self.gate = gate
        self.data_timeout = data_timeout
        self.implicit_tls = implicit_tls
        self.rejections = rejections
        self.limits = limits
        self.auth_failures = auth_failures
        self._refused = False
        self._closing = False
        self._client = ""
        # Every command goes through _tracked, which knows which one is running.
        self._smtp_methods = {
            name: self._tracked(name, method) for name, method in self._smtp_methods.items()
        }
        self._command: str | None = None
        self._counted = False  # the running command already counted as idle
        self._idle_commands = 0
        self._auth_failed = 0  # on this connection
        self._locked_out = False
        self._expired = False
        self._deadline: asyncio.TimerHandle | None = None

    @property
    def expired(self) -> bool:
        """``max_session_seconds`` are up; closed as soon as no transaction is open."""
        return self._expired

    @property
    def in_transaction(self) -> bool:
        """Between an accepted MAIL and the reply to DATA (or RSET)."""
        return self.envelope is not None and self.envelope.mail_from is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # aiosmtpd calls this again after STARTTLS, with the transport already set.
        if self.transport is None:
            ip = client_ip(transport.get_extra_info("peername"))
            refusal = self.gate.admit(self, ip)
            if refusal is not None:
                self._refused = True
                self.rejections.add(_AT_CONNECT[refusal])
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(refusal.encode("ascii") + b"\r\n")
                transport.close()
                return
            self._client = ip
            self._deadline = self.loop.call_later(self.limits.max_session_seconds, self._expire)
            if self.implicit_tls:
                # The whole connection is TLS, but aiosmtpd only notices STARTTLS and so
                # would neither offer nor accept AUTH (aio-libs/aiosmtpd#281).
                self._auth_require_tls = False
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self.gate.release(self)
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(error)

    def _tracked(
        self, name: str, method: Callable[[str], Awaitable[None]]
    ) -> Callable[[str], Awaitable[None]]:
        """``method`` (aiosmtpd's handler of command ``name``), counted against
        ``max_idle_commands`` when it moves no mail, and the end of an expired session."""

        async def run(arg: str) -> None:
            if self._closing:
                return  # pipelined after a 421: never run (an AUTH would check a password)
            self._command = name
            try:
                if name in _IDLE_COMMANDS or (
                    name in _GREETINGS and self.session is not None and self.session.host_name
                ):
                    self._idle_commands += 1
                    if self._idle_commands > self.limits.max_idle_commands:
                        self._hang_up(TOO_MANY_IDLE)
                        return
                    self._counted = True
                await method(arg)
            finally:
                self._command = None
                self._counted = False
            if self._expired and not self.in_transaction:
                self._hang_up(SESSION_TOO_LONG)

        return run

    def _expire(self) -> None:
        """``max_session_seconds`` are up: close now if between transactions; else once
        the transaction ends, or data_timeout later if it has not got to DATA by then."""
        self._expired = True
        if self._command is None and not self.in_transaction:
            self._hang_up(SESSION_TOO_LONG)
        else:
            self._deadline = self.loop.call_later(self.data_timeout, self._expire_hard)

    def _expire_hard(self) -> None:
        if self._command == "DATA":
            return  # bounded by data_timeout itself; closed right after its reply
        self._hang_up(SESSION_TOO_LONG)

    def _hang_up(self, reply: str) -> None:
        """Say ``reply`` (a 421: RFC 5321 §3.8) and close; counted as the refusal it is."""
        if self._closing:
            return
        self._closing = True
        reason = refusal_reason(reply)
        if reason is not None:
            self.rejections.add(reason)
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write(reply.encode("ascii") + b"\r\n")
            transport.close()

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:
        # A client address over its limit is refused before any password is checked.
        if self.auth_failures.locked_out(self._client):
            self._hang_up(AUTH_LOCKED_OUT)
            return
        await super().smtp_AUTH(arg)
        if self._locked_out:
            self._hang_up(AUTH_LOCKED_OUT)

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        # The password check (PLAIN and LOGIN): the lockout is asked again, as the
        # client's other connections may have reached it while this one sent its
        # credentials; each failure counts for the connection and the client address.
        if self.auth_failures.locked_out(self._client):
            self._locked_out = True
            return AuthResult(success=False, handled=True)
        result = super()._authenticate(mechanism, auth_data)
        if not result.success:
            self._auth_failed += 1
            self.auth_failures.add(self._client)
        return result

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = plain_address(arg, self.local_part_limit)  # without the parser, if it can
        if plain is not None:
            return plain
        # The stdlib header parser behind aiosmtpd raises IndexError (not
        # HeaderParseError) on a truncated address such as ``<bad@``: that is the
        # client's malformed address (553), not our internal error (451).
        try:
            return super()._getaddr(arg)
        except (IndexError, ValueError):
            return None, None

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if self.envelope is not None and self.envelope.rcpt_tos and not arg:
            # aiosmtpd has one timer; the message transfer gets data_timeout, and the
            # next command restores idle_timeout.
            self._reset_timeout(self.data_timeout)
        await super().smtp_DATA(arg)

    def _timeout_cb(self) -> None:
        if self.in_transaction:
            # A client gone quiet between MAIL and the end of DATA: a message lost.
            self.rejections.add("timeout")
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            status = self._reply(status)
            reason = refusal_reason(status)
            if reason is not None:
                self.rejections.add(reason)
            if reason == "auth_failed" and self._command == "AUTH":
                # Guessing is slowed: the client waits for this answer before the next try.
                await asyncio.sleep(self.limits.auth_delay(self._auth_failed))
        await super().push(status)
        if isinstance(status, str) and not self._closing:
            self._after_reply(status)
        if self.gate.draining and not self.in_transaction and not self._closing:
            # The transaction this connection was allowed to finish is over.
            self._closing = True
            await super().push(SHUTTING_DOWN)
            if self.transport is not None:
                self.transport.close()

    def _after_reply(self, status: str) -> None:
        """The session limits that a reply just sent can reach."""
        if status.startswith(_STORED):
            self._idle_commands = 0  # mail moved: the client may idle again
        elif status.startswith("535 ") and self._auth_failed >= self.limits.auth_max_failures:
            self._hang_up(AUTH_TOO_MANY)
        elif (
            status.startswith(_BAD_COMMAND)
            and not self._counted
            and refusal_reason(status) != "line_too_long"  # a refused message, not a command
        ):
            self._idle_commands += 1
            if self._idle_commands > self.limits.max_idle_commands:
                self._hang_up(TOO_MANY_IDLE)

    def _reply(self, status: str) -> str:
        status = _REWRITTEN.get(status, status)
        if isinstance(self, LMTP) and status.split(" (", 1)[0] in _END_OF_DATA:
            count = len(self.envelope.rcpt_tos) if self.envelope is not None else 1
            status = "\r\n".join([status] * max(count, 1))
        return status

    def goodbye(self) -> None:
        """Close an idle connection with 421 (RFC 5321 §3.8)."""
        self._closing = True
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write(SHUTTING_DOWN.encode("ascii") + b"\r\n")
            transport.close()

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]


class LMTPProtocol(SMTPProtocol, LMTP):
    """The same over LMTP (RFC 2033): LHLO, and one DATA reply per recipient."""
