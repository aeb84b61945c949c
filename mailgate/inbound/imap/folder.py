"""IMAP folder operations the poller needs, each one or two commands, by UID."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from imapclient import DELETED, SEEN, IMAPClient
from imapclient.exceptions import IMAPClientError

from mailgate.inbound.imap.connect import ImapRefused, describe

# Sizes are asked for this many UIDs at a time, so a folder of 100,000
# messages never becomes one enormous FETCH response.
SIZE_CHUNK = 1000


@dataclass(frozen=True)
class Selected:
    """What SELECT reported about the folder."""

    uidvalidity: int
    # None where a server leaves UIDNEXT out of its SELECT reply.
    uidnext: int | None
    exists: int

    def gained_mail_since(self, earlier: Selected) -> bool:
        """Whether mail may have been added between ``earlier`` and this SELECT.

        UIDNEXT changes whenever mail is added, even mail expunged since, and
        only then (RFC 3501 §2.3.1.1); without it the message count stands in.
        """
        if self.uidvalidity != earlier.uidvalidity:
            return True
        if self.uidnext is not None and earlier.uidnext is not None:
            return self.uidnext != earlier.uidnext
        return self.exists != earlier.exists


def select(client: IMAPClient, folder: str, *, mailbox: str) -> Selected:
    """Select ``folder`` read-write and return its UIDVALIDITY, UIDNEXT and size.

    Selected anew on every pass: RFC 3501 §2.3.1.1 lets a server announce a new
    UIDVALIDITY only at SELECT, and a re-SELECT also shows mail that arrived.
    """
    try:
        status = client.select_folder(folder)
    except IMAPClientError as exc:
        if client.folder_exists(folder):
            raise
        raise ImapRefused(f"mailbox {mailbox}: folder {folder!r} does not exist") from exc
    uidnext = status.get(b"UIDNEXT")
    return Selected(
        uidvalidity=int(status[b"UIDVALIDITY"]),
        uidnext=None if uidnext is None else int(uidnext),
        exists=int(status[b"EXISTS"]),
    )


def uids_after(client: IMAPClient, last_uid: int) -> list[int]:
    """UIDs above ``last_uid``, ascending, leaving out messages marked \\Deleted."""
    # RFC 3501 §6.4.4/§9: "n:*" with n above the highest UID still matches the
    # highest message, so the result is filtered, not trusted.
    found = client.search(["UID", f"{last_uid + 1}:*", "NOT", "DELETED"])
    return sorted(uid for uid in found if uid > last_uid)


def batches(
    client: IMAPClient, uids: Sequence[int], *, batch_size: int, max_bytes: int
) -> Iterator[list[tuple[int, int]]]:
    """``(uid, size)`` lists of at most ``batch_size`` messages whose sizes add up to
    at most ``max_bytes`` (a single larger message makes a batch of its own), so
    fetching one batch of bodies holds a bounded amount of memory."""
    batch: list[tuple[int, int]] = []
    total = 0
    for start in range(0, len(uids), SIZE_CHUNK):
        chunk = list(uids[start : start + SIZE_CHUNK])
        sizes = client.fetch(chunk, ["RFC822.SIZE"])
        for uid in chunk:
            if uid not in sizes:
                continue  # expunged meanwhile by another client
            size = int(sizes[uid][b"RFC822.SIZE"])
            if batch and (len(batch) >= batch_size or total + size > max_bytes):
                yield batch
                batch, total = [], 0
            batch.append((uid, size))
            total += size
    if batch:
        yield batch


def bodies(client: IMAPClient, uids: Sequence[int]) -> dict[int, bytes]:
    """The raw messages of ``uids``; a UID expunged meanwhile is simply absent.

    BODY.PEEK[] leaves \\Seen alone (RFC 3501 §6.4.5): the message is only
    marked or moved once it is safely stored.
    """
    if not uids:
        return {}
    fetched = client.fetch(list(uids), ["BODY.PEEK[]"])
    return {uid: bytes(data[b"BODY[]"]) for uid, data in fetched.items() if b"BODY[]" in data}


def ensure_folder(client: IMAPClient, folder: str, *, mailbox: str) -> None:
    """Create ``folder`` unless it exists (RFC 3501 §6.3.3)."""
    if client.folder_exists(folder):
        return
    try:
        client.create_folder(folder)
    except IMAPClientError as exc:
        if not client.folder_exists(folder):
            raise ImapRefused(
                f"mailbox {mailbox}: cannot create folder {folder!r}: {describe(exc)}"
            ) from exc


def move(client: IMAPClient, uids: Sequence[int], folder: str) -> None:
    """Move ``uids`` to ``folder``: MOVE (RFC 6851) if offered, else COPY, \\Deleted
    and an expunge of just these UIDs (RFC 4315 UID EXPUNGE) where possible."""
    if not uids:
        return
    if client.has_capability("MOVE"):
        client.move(list(uids), folder)
        return
    client.copy(list(uids), folder)
    client.add_flags(list(uids), [DELETED], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(list(uids))
    else:
        # Without UIDPLUS a plain EXPUNGE also removes any other message a
        # person marked \Deleted in this folder (RFC 4315 §1 explains why).
        client.expunge()


def mark_seen(client: IMAPClient, uids: Sequence[int]) -> None:
    """Flag ``uids`` \\Seen, the after_store = "seen" acknowledgement."""
    if uids:
        client.add_flags(list(uids), [SEEN], silent=True)
