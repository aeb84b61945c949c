"""One pass over a mailbox's folder: new UIDs in batches, stored, then acknowledged.

For each new UID: fetch the raw bytes, commit them through ``intake.accept``,
and only then acknowledge the message (move it or flag it \\Seen, invariant 1).
A crash in between leaves it in the folder; the next pass fetches it again and
intake recognises it by source_ref or content (invariant 2), so it is only
acknowledged, never stored twice. The cursor (UIDVALIDITY, last UID) is saved
after each batch, so an interrupted drain resumes where it stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from imapclient import IMAPClient

from mailgate.core.errors import PermanentFailure
from mailgate.core.settings import ImapMailbox, Settings
from mailgate.db import rejection_counts as rejections
from mailgate.db.store import Store
from mailgate.inbound.handoff import hand_off
from mailgate.inbound.imap import cursor as imap_cursor
from mailgate.inbound.imap import folder as imap_folder
from mailgate.inbound.imap.cursor import Cursor
from mailgate.inbound.imap.folder import Selected
from mailgate.inbound.intake import Envelope, accept, refusal_reason

log = logging.getLogger("mailgate.inbound.imap.poller")


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
    # The folder as this pass's SELECT found it; None when it did not select (held_by).
    selected: Selected | None = None


@dataclass
class _Tally:
    found: int = 0
    stored: int = 0
    duplicates: int = 0
    refused: int = 0
    done: int = 0
    ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class FolderPass:
    """Everything one pass needs; ``acknowledge`` moves or flags committed UIDs and
    ``keep_lease`` raises when this poller may no longer touch the mailbox."""

    box: ImapMailbox
    store: Store
    settings: Settings
    now: Callable[[], datetime]
    acknowledge: Callable[[IMAPClient, Sequence[int]], None]
    keep_lease: Callable[[], None]

    def run(self, client: IMAPClient, stop: threading.Event) -> PassResult:
        """Read every UID above the cursor, batch by batch, until done or ``stop``."""
        box = self.box
        selected = imap_folder.select(client, box.folder, mailbox=box.name)
        uidvalidity = selected.uidvalidity
        last_uid = self._start_uid(uidvalidity)
        uids = imap_folder.uids_after(client, last_uid)
        tally = _Tally(found=len(uids))
        max_bytes = self.settings.smtp.max_message_bytes
        for batch in imap_folder.batches(
            client, uids, batch_size=box.batch_size, max_bytes=max_bytes
        ):
            if stop.is_set():
                break
            self.keep_lease()
            last_uid = self._batch(client, batch, uidvalidity, tally, stop)
            for inbound_id in tally.ids:
                hand_off(self.store, inbound_id, settings=self.settings, now=self.now)
            tally.ids.clear()
            # Saved last: a crash before this re-reads the batch, and intake and
            # processing both recognise what they already did.
            imap_cursor.save(self.store, box.name, Cursor(uidvalidity, last_uid), now=self.now)
            if len(uids) > box.batch_size:
                log.info("mailbox %s: %d/%d stored", box.name, tally.done, len(uids))
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
        return PassResult(
            box.name, tally.found, tally.stored, tally.duplicates, tally.refused, selected=selected
        )

    def _start_uid(self, uidvalidity: int) -> int:
        """The last UID handled, or 0 on a first pass or after a UIDVALIDITY change."""
        box = self.box
        saved = imap_cursor.load(self.store, box.name)
        if saved is None:
            return 0
        if saved.uidvalidity == uidvalidity:
            return saved.last_uid
        log.warning(
            "mailbox %s: UIDVALIDITY of %r changed (%d to %d): reading it again; "
            "messages already stored are recognised, not duplicated",
            box.name,
            box.folder,
            saved.uidvalidity,
            uidvalidity,
        )
        imap_cursor.save(self.store, box.name, Cursor(uidvalidity, 0), now=self.now)
        return 0

    def _batch(
        self,
        client: IMAPClient,
        batch: list[tuple[int, int]],
        uidvalidity: int,
        tally: _Tally,
        stop: threading.Event,
    ) -> int:
        """Store one batch, then acknowledge it; returns the last UID dealt with."""
        box = self.box
        max_bytes = self.settings.smtp.max_message_bytes
        raws = imap_folder.bodies(client, [uid for uid, size in batch if size <= max_bytes])
        committed: list[int] = []
        last_uid = 0
        for uid, size in batch:
            last_uid = uid
            tally.done += 1
            raw = raws.get(uid)
            if size > max_bytes:
                self._refuse(tally, uid, f"{size} bytes, over smtp.max_message_bytes", "too_big")
                continue
            if raw is None:
                continue  # expunged by another client meanwhile
            try:
                accepted = accept(
                    self.store,
                    raw,
                    source="imap",
                    envelope=Envelope(),
                    max_bytes=max_bytes,
                    now=self.now,
                    source_ref=f"imap:{box.name}:{uidvalidity}:{uid}",
                )
            except PermanentFailure as exc:
                self._refuse(tally, uid, str(exc), refusal_reason(exc))
                continue
            committed.append(uid)
            tally.ids.append(accepted.inbound_id)
            if accepted.duplicate:
                tally.duplicates += 1
            else:
                tally.stored += 1
            if stop.is_set():
                break  # the message in hand is stored; acknowledge it and stop
        self.acknowledge(client, committed)
        return last_uid

    def _refuse(self, tally: _Tally, uid: int, reason: str, kind: str) -> None:
        # Left in the folder for a person; the cursor moves past it, so it is refused
        # (and counted) once: written at once, no buffering needed.
        tally.refused += 1
        rejections.record(self.store, "imap", kind, self.now)
        box = self.box
        log.warning(
            "mailbox %s: UID %d left in %r, not stored: %s", box.name, uid, box.folder, reason
        )
