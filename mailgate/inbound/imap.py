"""The IMAP poller: one mailbox, one lease, IDLE or polling; store, then acknowledge.

For each new UID: fetch the raw bytes, commit them through ``intake.accept``,
and only then move the message to ``processed_folder`` or flag it \\Seen
(invariant 1). A crash in between leaves the message in the folder; the next
pass fetches it again and intake recognises it (invariant 2), so it is only
acknowledged, never stored twice.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailgate import leases
from mailgate.backoff import compute_backoff
from mailgate.errors import PermanentFailure, TemporaryFailure
from mailgate.inbound import imap_cursor, imap_folder
from mailgate.inbound.imap_connect import (
    NETWORK_ERRORS,
    ImapRefused,
    ImapUnavailable,
    close,
    connect,
    describe,
)
from mailgate.inbound.imap_cursor import Cursor
from mailgate.inbound.intake import Envelope, accept
from mailgate.processing import process
from mailgate.settings import ImapMailbox, Settings
from mailgate.store import Store

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


@dataclass(frozen=True)
class PassResult:
    """What one pass over a mailbox's folder did."""

    mailbox: str
    found: int = 0
    stored: int = 0
    duplicates: int = 0
    refused: int = 0
    # Set when another poller holds the mailbox's lease and this pass did nothing.
    held_by: str = ""


@dataclass
class _Tally:
    found: int = 0
    stored: int = 0
    duplicates: int = 0
    refused: int = 0
    ids: list[int] = field(default_factory=list)


class LeaseLost(Exception):
    """Another poller took this mailbox's lease over: stop touching the mailbox."""


def hand_off(
    store: Store, inbound_id: int, *, settings: Settings, now: Callable[[], datetime]
) -> None:
    """Hand a stored message to processing: inline with the embedded queue.

    The one place to swap for a broker enqueue. The message is already safe,
    so a processing failure is recorded on its row for a retry, not raised.
    """
    if settings.queue.broker != "embedded":
        return  # the worker's reconciler picks up rows still "received"
    try:
        process(store, inbound_id, settings=settings, now=now)
    except Exception as exc:  # noqa: BLE001 - recorded on the row by process()
        log.warning("inbound %s: processing failed: %s", inbound_id, type(exc).__name__)


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
        database trouble: it logs one line and retries with backoff."""
        waiting = False
        try:
            while not stop.is_set():
                if not self._take_lease():
                    if not waiting:
                        state = leases.current(self.store, self.lease_name)
                        log.info(
                            "mailbox %s: another poller holds the lease (%s); waiting",
                            self.box.name,
                            state.holder if state else "?",
                        )
                    waiting = True
                    stop.wait(self.timing.lease_retry)
                    continue
                if waiting:
                    log.info("mailbox %s: lease taken; polling", self.box.name)
                waiting = False
                delay = self._watch_until_trouble(stop)
                if delay:
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

    def _watch_until_trouble(self, stop: threading.Event) -> float:
        """Connect and watch until ``stop`` (returns 0) or trouble (returns the delay)."""
        try:
            with self._connection() as client:
                use_idle = self.box.idle and client.has_capability("IDLE")
                while not stop.is_set():
                    found = self._pass(client, stop).found
                    self._failures = self._refusals = 0
                    if found or stop.is_set():
                        # Read again until a pass finds nothing: mail that arrived
                        # meanwhile may have been announced during our own commands,
                        # and IDLE would not announce it a second time.
                        continue
                    if use_idle:
                        self._idle(client, stop)
                    else:
                        self._wait(self.box.poll_interval, stop)
            return 0.0
        except LeaseLost:
            log.warning("mailbox %s: lease lost to another poller; standing back", self.box.name)
            return 0.0
        except ImapRefused as exc:
            self._refusals += 1
            delay = self._backoff(self._refusals, self.timing.refused_base, self.timing.refused_cap)
            log.error("%s; next attempt in %.0fs", exc, delay)
            return delay
        except TemporaryFailure as exc:  # the server or the database is unavailable
            self._failures += 1
            delay = self._backoff(self._failures, self.timing.retry_base, self.timing.retry_cap)
            log.warning("%s; retrying in %.1fs", exc, delay)
            return delay
        except Exception as exc:  # a poller thread must outlive any bug: log it, retry
            self._failures += 1
            delay = self._backoff(self._failures, self.timing.retry_base, self.timing.retry_cap)
            log.error(
                "mailbox %s: unexpected %s: %s; retrying in %.1fs",
                self.box.name,
                type(exc).__name__,
                exc,
                delay,
            )
            log.debug("mailbox %s: details", self.box.name, exc_info=True)
            return delay

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
        except (LeaseLost, TemporaryFailure):
            close(client, polite=False)
            raise
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

    # -- one pass -------------------------------------------------------------

    def _pass(self, client: IMAPClient, stop: threading.Event) -> PassResult:
        box = self.box
        uidvalidity = imap_folder.select(client, box.folder, mailbox=box.name)
        saved = imap_cursor.load(self.store, box.name)
        last_uid = 0
        if saved is not None and saved.uidvalidity == uidvalidity:
            last_uid = saved.last_uid
        elif saved is not None:
            log.warning(
                "mailbox %s: UIDVALIDITY of %r changed (%d to %d): reading it again; "
                "messages already stored are recognised, not duplicated",
                box.name,
                box.folder,
                saved.uidvalidity,
                uidvalidity,
            )
            imap_cursor.save(self.store, box.name, Cursor(uidvalidity, 0), now=self._now)
        uids = imap_folder.uids_after(client, last_uid)
        tally = _Tally(found=len(uids))
        max_bytes = self.settings.smtp.max_message_bytes
        done = 0
        for batch in imap_folder.batches(
            client, uids, batch_size=box.batch_size, max_bytes=max_bytes
        ):
            if stop.is_set():
                break
            self._keep_lease()
            last_uid, handled = self._batch(client, batch, uidvalidity, tally, stop)
            for inbound_id in tally.ids:
                hand_off(self.store, inbound_id, settings=self.settings, now=self._now)
            tally.ids.clear()
            # Saved last: a crash before this re-reads the batch, and intake and
            # processing both recognise what they already did.
            imap_cursor.save(self.store, box.name, Cursor(uidvalidity, last_uid), now=self._now)
            done += handled
            if len(uids) > box.batch_size:
                log.info("mailbox %s: %d/%d stored", box.name, done, len(uids))
        self.passes += 1
        self.stored += tally.stored
        if tally.found:
            log.info(
                "mailbox %s: %d new: %d stored, %d already stored, %d left in %r",
                box.name,
                tally.found,
                tally.stored,
                tally.duplicates,
                tally.refused,
                box.folder,
            )
        return PassResult(box.name, tally.found, tally.stored, tally.duplicates, tally.refused)

    def _batch(
        self,
        client: IMAPClient,
        batch: list[tuple[int, int]],
        uidvalidity: int,
        tally: _Tally,
        stop: threading.Event,
    ) -> tuple[int, int]:
        """Store one batch, then acknowledge it. Returns (last UID dealt with, count)."""
        box = self.box
        max_bytes = self.settings.smtp.max_message_bytes
        raws = imap_folder.bodies(client, [uid for uid, size in batch if size <= max_bytes])
        stored: list[int] = []
        last_uid, count = 0, 0
        for uid, size in batch:
            last_uid, count = uid, count + 1
            raw = raws.get(uid)
            if size > max_bytes or raw is None:
                if size > max_bytes:
                    self._refuse(tally, uid, f"{size} bytes, over smtp.max_message_bytes")
                continue  # (raw None: expunged by another client meanwhile)
            try:
                accepted = accept(
                    self.store,
                    raw,
                    source="imap",
                    envelope=Envelope(),
                    max_bytes=max_bytes,
                    now=self._now,
                    source_ref=f"imap:{box.name}:{uidvalidity}:{uid}",
                )
            except PermanentFailure as exc:
                self._refuse(tally, uid, str(exc))
                continue
            stored.append(uid)
            tally.ids.append(accepted.inbound_id)
            if accepted.duplicate:
                tally.duplicates += 1
            else:
                tally.stored += 1
            if stop.is_set():
                break  # the message in hand is stored; acknowledge it and stop
        self.after_store(client, stored)
        return last_uid, count

    def _refuse(self, tally: _Tally, uid: int, reason: str) -> None:
        # Left in the folder for a person; the cursor moves past it.
        tally.refused += 1
        box = self.box
        log.warning(
            "mailbox %s: UID %d left in %r, not stored: %s", box.name, uid, box.folder, reason
        )

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
