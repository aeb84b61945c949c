"""The IMAP poller: one mailbox, one lease, IDLE or polling, reconnecting with backoff.

At most one poller is active per mailbox, across processes and machines: it
holds the mailbox's lease (``mailgate.db.leases``) and renews it while it works.
Each pass over the folder is ``imap_pass.FolderPass``; this module decides when
passes run and what happens when the network, the login or the database fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailgate.core.backoff import compute_backoff
from mailgate.core.errors import TemporaryFailure
from mailgate.core.settings import ImapMailbox, Settings
from mailgate.db import leases
from mailgate.db.store import Store
from mailgate.inbound.imap import folder as imap_folder
from mailgate.inbound.imap.connect import (
    NETWORK_ERRORS,
    ImapRefused,
    ImapUnavailable,
    close,
    connect,
    describe,
)
from mailgate.inbound.imap.drain import FolderPass, PassResult

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Timing:
    """How long the poller waits for what, in seconds. Tests shorten these."""

    lease_ttl: float = 60.0
    lease_renew: float = 20.0
    # How often a poller without the lease asks again.
    lease_retry: float = 20.0
    # RFC 2177 §3: a server may log an idle client out after 30 minutes, so
    # IDLE is ended and re-issued well before the 29 minutes it recommends.
    idle_restart: float = 25 * 60.0
    # How often IDLE and polling waits look at the stop event.
    tick: float = 1.0
    # Network trouble: reconnect after base, 2*base, ... up to cap (with jitter).
    retry_base: float = 1.0
    retry_cap: float = 300.0
    # Refused login or configuration: a person must act; try again rarely.
    refused_base: float = 600.0
    refused_cap: float = 3600.0


class LeaseLost(Exception):
    """Another poller took this mailbox's lease over: stop touching the mailbox."""


class ImapPoller:
    """Polls one ``[[imap.mailboxes]]`` entry; at most one active per mailbox anywhere.

    ``run_once()`` does one pass and returns; ``run_forever(stop)`` watches the
    folder (IDLE where offered, else every ``poll_interval``) until ``stop`` is set.
    """

    def __init__(
        self,
        box: ImapMailbox,
        *,
        store: Store,
        settings: Settings,
        now: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        timing: Timing | None = None,
        holder: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.box = box
        self.store = store
        self.settings = settings
        self.timing = timing or Timing()
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_name = f"imap:{box.name}"
        # Totals over this poller's life, for logs and tests.
        self.passes = 0
        self.stored = 0
        self._now = now
        self._monotonic = monotonic
        self._rand = rand
        self._env = env
        self._renewed_at = float("-inf")
        self._failures = 0
        self._refusals = 0
        self._folder_ready = False

    # -- the two entry points -------------------------------------------------

    def run_once(self, stop: threading.Event | None = None) -> PassResult:
        """Take the lease, connect, store and acknowledge what is new, disconnect.

        Returns with ``held_by`` set, doing nothing, when another poller is active.
        Raises ``ImapUnavailable``, ``ImapRefused`` or the store's ``TemporaryFailure``.
        """
        stop = stop or threading.Event()
        if not self._take_lease():
            state = leases.current(self.store, self.lease_name)
            return PassResult(self.box.name, held_by=state.holder if state else "?")
        try:
            with self._connection() as client:
                return self._pass(client, stop)
        finally:
            self._release_lease()

    def run_forever(self, stop: threading.Event) -> None:
        """Watch the mailbox until ``stop`` is set. Never raises for network, login or
        database trouble, nor for a bug: it logs one line and retries with backoff."""
        waiting = False
        try:
            while not stop.is_set():
                try:
                    if not self._take_lease():
                        waiting = self._log_waiting(waiting)
                        stop.wait(self.timing.lease_retry)
                        continue
                    if waiting:
                        log.info("mailbox %s: lease taken; polling", self.box.name)
                    waiting = False
                    self._watch(stop)
                except LeaseLost:
                    log.warning("mailbox %s: lease lost to another poller", self.box.name)
                except Exception as exc:  # noqa: BLE001 - logged by _trouble; the thread lives on
                    delay = self._trouble(exc)
                    # Let a poller elsewhere, perhaps with a better network, take over.
                    self._release_lease()
                    stop.wait(delay)
        finally:
            self._release_lease()

    # -- acknowledging: the seam between "stored" and "done" ------------------

    def after_store(self, client: IMAPClient, uids: Sequence[int]) -> None:
        """Acknowledge messages whose bytes are committed: move or flag them."""
        if self.box.after_store == "seen":
            imap_folder.mark_seen(client, uids)
            return
        if not uids:
            return
        if not self._folder_ready:
            imap_folder.ensure_folder(client, self.box.processed_folder, mailbox=self.box.name)
            self._folder_ready = True
        imap_folder.move(client, uids, self.box.processed_folder)

    # -- watching -------------------------------------------------------------

    def _watch(self, stop: threading.Event) -> None:
        """Connect, then pass and wait (IDLE or poll_interval) until ``stop``."""
        with self._connection() as client:
            use_idle = self.box.idle and client.has_capability("IDLE")
            while not stop.is_set():
                result = self._pass(client, stop)
                self._failures = self._refusals = 0
                if result.found or stop.is_set():
                    # Read again until a pass finds nothing: mail that arrived
                    # meanwhile may have been announced during our own commands,
                    # and IDLE would not announce it a second time.
                    continue
                if use_idle:
                    if self._arrived_during(client, result):
                        continue
                    self._idle(client, stop)
                else:
                    self._wait(self.box.poll_interval, stop)

    def _trouble(self, exc: Exception) -> float:
        """Log ``exc`` in one line and return how long to wait before trying again."""
        if isinstance(exc, ImapRefused):
            self._refusals += 1
            delay = self._backoff(self._refusals, self.timing.refused_base, self.timing.refused_cap)
            log.error("%s; next attempt in %.0fs", exc, delay)
            return delay
        self._failures += 1
        delay = self._backoff(self._failures, self.timing.retry_base, self.timing.retry_cap)
        if isinstance(exc, TemporaryFailure):  # the server or the database is unavailable
            log.warning("%s; retrying in %.1fs", exc, delay)
        else:
            log.error(
                "mailbox %s: unexpected %s: %s; retrying in %.1fs",
                self.box.name,
                type(exc).__name__,
                exc,
                delay,
            )
            log.debug("mailbox %s: details", self.box.name, exc_info=exc)
        return delay

    def _log_waiting(self, already: bool) -> bool:
        if not already:
            state = leases.current(self.store, self.lease_name)
            log.info(
                "mailbox %s: another poller holds the lease (%s); waiting",
                self.box.name,
                state.holder if state else "?",
            )
        return True

    def _arrived_during(self, client: IMAPClient, result: PassResult) -> bool:
        """Whether mail reached the folder after the SELECT of a pass that found nothing.

        Such mail is not in the pass's UID SEARCH result, yet the server may
        announce it (EXISTS) with the SEARCH reply, which imapclient sets aside
        unread; IDLE then reports nothing new and the mail would wait for
        idle_restart. Likeliest right after a reconnect, as mail held up by the
        outage arrives. A fresh SELECT tells, and nothing arriving after it goes
        unannounced: IDLE is the next command, and reports it.
        """
        if result.selected is None:
            return False
        now = imap_folder.select(client, self.box.folder, mailbox=self.box.name)
        if not now.gained_mail_since(result.selected):
            return False
        log.debug("mailbox %s: mail arrived during the pass; reading again", self.box.name)
        return True

    def _idle(self, client: IMAPClient, stop: threading.Event) -> None:
        """Wait in IDLE (RFC 2177) until new mail, ``stop``, or time to re-issue it."""
        client.idle()
        started = self._monotonic()
        while not stop.is_set() and self._monotonic() - started < self.timing.idle_restart:
            self._keep_lease()
            asked = self._monotonic()
            responses = client.idle_check(timeout=self.timing.tick)
            if any(r[:1] == (b"BYE",) for r in responses):
                # RFC 3501 §7.1.5: the server is closing the connection.
                raise ImapUnavailable(f"mailbox {self.box.name}: server closed the connection")
            if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                break
            if not responses and self._monotonic() - asked < self.timing.tick / 2:
                # Readable yet nothing parsed: usually end of file. Ending IDLE
                # tells a live connection from a dead one.
                break
        client.idle_done()

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        deadline = self._monotonic() + seconds
        while not stop.is_set():
            left = deadline - self._monotonic()
            if left <= 0:
                return
            stop.wait(min(left, self.timing.tick))
            self._keep_lease()

    @contextmanager
    def _connection(self) -> Iterator[IMAPClient]:
        """A logged-in client; IMAP errors inside become ``ImapUnavailable``."""
        client = connect(self.box, env=self._env)
        self._folder_ready = False
        try:
            yield client
        except NETWORK_ERRORS as exc:
            close(client, polite=False)
            raise ImapUnavailable(
                f"mailbox {self.box.name}: connection lost: {describe(exc)}"
            ) from exc
        except IMAPClientError as exc:
            close(client, polite=False)
            raise ImapUnavailable(
                f"mailbox {self.box.name}: server error: {describe(exc)}"
            ) from exc
        except BaseException:
            close(client, polite=False)
            raise
        close(client)

    def _pass(self, client: IMAPClient, stop: threading.Event) -> PassResult:
        result = FolderPass(
            box=self.box,
            store=self.store,
            settings=self.settings,
            now=self._now,
            acknowledge=self.after_store,
            keep_lease=self._keep_lease,
        ).run(client, stop)
        self.passes += 1
        self.stored += result.stored
        return result

    # -- lease and backoff ----------------------------------------------------

    def _take_lease(self) -> bool:
        taken = leases.acquire(
            self.store, self.lease_name, self.holder, ttl=self.timing.lease_ttl, now=self._now
        )
        if taken:
            self._renewed_at = self._monotonic()
        return taken

    def _keep_lease(self) -> None:
        if self._monotonic() - self._renewed_at < self.timing.lease_renew:
            return
        if not self._take_lease():
            raise LeaseLost(self.lease_name)

    def _release_lease(self) -> None:
        with contextlib.suppress(TemporaryFailure):  # then it simply expires
            leases.release(self.store, self.lease_name, self.holder)
        self._renewed_at = float("-inf")

    def _backoff(self, attempt: int, base: float, cap: float) -> float:
        return compute_backoff(attempt, base=base, cap=cap, rand=self._rand)
