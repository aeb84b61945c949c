"""The SMTP/LMTP listener's lifecycle: bind, TLS, AUTH, executors, and a graceful stop.

``SmtpServer`` runs on whatever asyncio loop starts it (``mailgate smtp``, or
``mailgate run`` beside other roles); ``ServerThread`` gives it a loop of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from mailgate.core.errors import ConfigError
from mailgate.core.settings import Settings, SmtpSettings
from mailgate.db.rejection_counts import FLUSH_SECONDS, RejectionCounter
from mailgate.db.store import Store
from mailgate.inbound.group_commit import GroupCommit
from mailgate.inbound.handoff import hand_off
from mailgate.inbound.smtp.handler import IntakeHandler
from mailgate.inbound.smtp.limits import AuthFailures, SessionLimits
from mailgate.inbound.smtp.protocol import Gate, LMTPProtocol, SMTPProtocol
from mailgate.inbound.smtp.trace import MAX_TRACE_BYTES
from mailgate.jobs import is_embedded
from mailgate.jobs.wakeup import listening, wake_workers

log = logging.getLogger(__name__)


class _DropDeprecationNoise(logging.Filter):
    """aiosmtpd 1.4 logs a WARNING about its own ``Session.login_data`` on every AUTH."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in str(record.msg)


_QUIET = _DropDeprecationNoise()


def parse_listen(listen: str) -> tuple[str, int]:
    """``'127.0.0.1:2525'`` or ``'[::1]:2525'`` → ``(host, port)``; validated by config."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def tls_context(smtp: SmtpSettings, source: str) -> ssl.SSLContext:
    """A server context from ``smtp.tls_cert``/``smtp.tls_key``; ConfigError if unusable."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(smtp.tls_cert, smtp.tls_key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigError(
            [f"{source}: smtp.tls_cert: cannot load {smtp.tls_cert} with {smtp.tls_key}: {reason}"]
        ) from None
    return context


def _authenticator(username: str, password: str) -> Callable[..., AuthResult]:
    user, secret = username.encode("utf-8"), password.encode("utf-8")

    def check(
        server: SMTP, session: Session, envelope: SmtpEnvelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        # Both compared, in constant time, so timing tells nothing about which was wrong.
        same_user = hmac.compare_digest(data.login, user)
        same_secret = hmac.compare_digest(data.password, secret)
        return AuthResult(success=same_user and same_secret, handled=False)

    return check


class SmtpServer:
    """One listener on ``smtp.listen`` that stores what it accepts through intake.

    ``on_stored(inbound_id)`` runs on the loop for every committed message; by default
    the message is handed to ``handoff.hand_off`` on a processing thread.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        now: Callable[[], datetime],
        on_stored: Callable[[int], None] | None = None,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        smtp = settings.smtp
        self.settings = settings
        self.store = store
        self.now = now
        self.host, self.port = parse_listen(smtp.listen)
        self.hostname = smtp.hostname or socket.gethostname()
        self.lmtp = smtp.protocol == "lmtp"
        self.tls = smtp.tls
        self.context = tls_context(smtp, settings.source) if smtp.tls != "none" else None
        self.auth_enabled = bool(smtp.auth_username)
        self.address: tuple[str, int] = (self.host, self.port)
        self._process_pool = ThreadPoolExecutor(
            1 if store.is_sqlite else 4, "mailgate-smtp-process"
        )
        self._processing: set[asyncio.Future[Any]] = set()
        self._on_stored = on_stored or self._process
        self.gate = Gate(
            max_connections=smtp.max_connections, max_per_ip=smtp.max_connections_per_ip
        )
        self.limits = SessionLimits.from_settings(smtp)
        # Failed AUTH per client address, in this process's memory (one receiver's view).
        self.auth_failures = AuthFailures(
            limit=smtp.auth_max_failures_per_client, window=smtp.auth_failure_window_seconds
        )
        self.committer = GroupCommit(
            store,
            source="smtp",
            # The exact limit is checked on the client's bytes; this is a backstop.
            max_bytes=smtp.max_message_bytes + MAX_TRACE_BYTES,
            now=now,
            on_stored=self._stored,
            contended=lambda: is_embedded(settings) and listening(settings),
        )
        self.handler = IntakeHandler(
            self.committer,
            addresses=smtp.addresses,
            max_recipients=smtp.max_recipients,
            max_message_bytes=smtp.max_message_bytes,
            hostname=self.hostname,
            lmtp=self.lmtp,
            offer_auth=self.auth_enabled,
            now=now,
        )
        self._authenticate = (
            _authenticator(smtp.auth_username, smtp.auth_password) if self.auth_enabled else None
        )
        # Both protocols count as "smtp", the source their accepted messages get too.
        self.rejections = RejectionCounter("smtp", now)
        self.flush_seconds = flush_seconds
        self._flusher: asyncio.Task[None] | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hurry: asyncio.Event | None = None
        logging.getLogger("mail.log").addFilter(_QUIET)

    @property
    def connection_count(self) -> int:
        """Connections open right now (admitted ones only)."""
        return len(self.gate)

    @property
    def backlog(self) -> int:
        """Commits and processing jobs not finished yet."""
        return self.committer.pending + len(self._processing)

    def describe(self) -> str:
        """One line for the start-up log: where, what, and how it is protected."""
        host = f"[{self.address[0]}]" if ":" in self.address[0] else self.address[0]
        auth = "required" if self.auth_enabled else "off"
        return (
            f"listening on {host}:{self.address[1]} ({'LMTP' if self.lmtp else 'SMTP'}, "
            f"tls={self.tls}, auth={auth}, for {', '.join(self.settings.smtp.addresses)})"
        )

    async def start(self) -> tuple[str, int]:
        """Bind and start accepting; returns the bound (host, port)."""
        self._loop = asyncio.get_running_loop()
        self._hurry = asyncio.Event()
        try:
            self._server = await self._loop.create_server(
                self._protocol,
                host=self.host,
                port=self.port,
                ssl=self.context if self.tls == "implicit" else None,
            )
        except OSError as exc:
            # asyncio's strerror repeats the address: the errno's own words are enough.
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ConfigError(
                [
                    f"{self.settings.source}: smtp.listen: cannot listen on "
                    f"{self.settings.smtp.listen}: {reason}"
                ]
            ) from None
        self.address = self._server.sockets[0].getsockname()[:2]
        self._flusher = asyncio.create_task(self._flush_every(self.flush_seconds))
        return self.address

    async def _flush_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await asyncio.to_thread(self.rejections.flush_quietly, self.store)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, let transactions in flight finish (up to ``timeout`` seconds),
        wait for their commits and hand-offs, then release the threads."""
        if self._server is None or self._loop is None:
            return
        deadline = None if timeout is None else self._loop.time() + timeout
        self._server.close()
        aborted = await self.gate.drain(timeout)
        if aborted:
            log.warning("smtp: %d connection(s) cut off at shutdown, nothing acknowledged", aborted)
        # Commits already handed in finish: those messages are stored either way.
        await self.committer.settle()
        await self._settle(self._processing, deadline)
        if self._processing:
            log.warning(
                "smtp: %d stored message(s) left pending for the reconciler to process",
                len(self._processing),
            )
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        # Refusals up to the last connection are written before the process ends.
        await asyncio.to_thread(self.rejections.flush_quietly, self.store)
        await asyncio.to_thread(self._release_threads)
        self._server = None

    def abort(self) -> None:
        """Hurry a ``stop`` in progress: drop connections, stop waiting for processing."""
        self.gate.abort()
        if self._hurry is not None:
            self._hurry.set()

    def _release_threads(self) -> None:
        self.committer.close()
        # Queued processing is dropped: those rows stay pending for the reconciler.
        self._process_pool.shutdown(wait=True, cancel_futures=True)

    async def _settle(self, futures: set[Any], deadline: float | None) -> None:
        assert self._loop is not None and self._hurry is not None
        hurry = asyncio.ensure_future(self._hurry.wait())
        try:
            while futures and not self._hurry.is_set():
                left = None if deadline is None else deadline - self._loop.time()
                if left is not None and left <= 0:
                    return
                await asyncio.wait({*futures, hurry}, timeout=left, return_when="FIRST_COMPLETED")
        finally:
            hurry.cancel()

    def _protocol(self) -> SMTPProtocol:
        smtp = self.settings.smtp
        cls = LMTPProtocol if self.lmtp else SMTPProtocol
        return cls(
            self.handler,
            gate=self.gate,
            data_timeout=smtp.data_timeout,
            implicit_tls=self.tls == "implicit",
            rejections=self.rejections,
            limits=self.limits,
            auth_failures=self.auth_failures,
            loop=self._loop,
            hostname=self.hostname,
            ident="LMTP mailgate" if self.lmtp else "ESMTP mailgate",
            data_size_limit=smtp.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=self.context if self.tls == "starttls" else None,
            timeout=smtp.idle_timeout,
            # Configured credentials are required to submit; AUTH itself is only ever
            # offered inside TLS (RFC 4954 §4), so passwords never cross in the clear.
            auth_required=self.auth_enabled,
            auth_require_tls=True,
            authenticator=self._authenticate,
        )

    def _stored(self, inbound_id: int) -> None:
        self._on_stored(inbound_id)

    def _process(self, inbound_id: int) -> None:
        assert self._loop is not None
        if is_embedded(self.settings) and wake_workers(self.settings):
            # A worker beside this receiver (`mailgate run`) processes it at once; the
            # receiver keeps its interpreter for acknowledging the next messages.
            return
        job = partial(hand_off, self.store, inbound_id, settings=self.settings, now=self.now)
        future = self._loop.run_in_executor(self._process_pool, job)
        self._processing.add(future)
        future.add_done_callback(self._processing.discard)


class ServerThread:
    """Runs an ``SmtpServer`` on its own event loop in a background thread."""

    def __init__(self, server: SmtpServer, *, stop_timeout: float | None = 30.0) -> None:
        self.server = server
        self.stop_timeout = stop_timeout
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def start(self, timeout: float = 10.0) -> tuple[str, int]:
        """Start and return the bound (host, port); raises what ``SmtpServer.start`` raised."""
        self._thread = threading.Thread(target=self._run, name="mailgate-smtp", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the SMTP server did not start")
        if self._error is not None:
            raise self._error
        return self.server.address

    def stop(self, timeout: float = 60.0) -> None:
        """Stop gracefully (see ``SmtpServer.stop``) and join the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError("the SMTP server did not stop")

    def call(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the server's loop (e.g. ``server.abort``)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn)

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that called start()
            self._error = exc
            return
        finally:
            self._ready.set()
        await self._stop.wait()
        await self.server.stop(self.stop_timeout)
