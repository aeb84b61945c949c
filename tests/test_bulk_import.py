"""`mailgate ingest --mbox` in groups (issue 23): a group shares its transactions, and
still every message ends with its own outcome; a message that fails takes only itself
down; parsing in worker processes changes nothing but the speed."""

from __future__ import annotations

import dataclasses
import mailbox
import multiprocessing
import os
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from mailgate.core.settings import SecuritySettings, Settings
from mailgate.db.rejection_counts import RejectionCounter
from mailgate.db.store import open_store
from mailgate.inbound import parse_pool
from mailgate.inbound.bulk import GROUP, GROUP_BYTES, import_messages
from mailgate.inbound.files import FileMessage
from mailgate.inbound.intake import Envelope
from tests.conftest import SECRET, fixed_clock, make_settings
from tests.mail import build
from tests.test_ingest import mailgate


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "mailgate.toml").write_text(
        f'[database]\nurl = "sqlite:///{folder / "mailgate.db"}"\n[security]\nsecret = "{SECRET}"\n'
    )
    return folder


def _count(path: Path) -> int:
    box = mailbox.mbox(str(path))
    try:
        return len(box)
    finally:
        box.close()


def _mbox(path: Path, subjects: list[str], attachment: bytes = b"") -> Path:
    box = mailbox.mbox(str(path))
    files = [("logs.bin", "application/octet-stream", attachment)] if attachment else None
    for i, subject in enumerate(subjects):
        # One sender each: the acknowledgements stay under the hourly limit per address.
        sender = f"customer{i}@customer.test"
        box.add(
            build(
                sender=sender,
                subject=subject,
                message_id=f"<bulk-{i}@customer.test>",
                attachments=files,
            )
        )
        if i % 3 == 2:  # every third message replies to the one before it
            box.add(
                build(
                    sender=sender,
                    subject=f"Re: {subject}",
                    message_id=f"<bulk-{i}-re@customer.test>",
                    in_reply_to=f"<bulk-{i}@customer.test>",
                )
            )
    box.flush()
    box.close()
    return path


def _rows(home: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(home / "mailgate.db") as db:
        return db.execute(query).fetchall()


def test_more_than_one_group_each_message_its_own_outcome(home: Path) -> None:
    """Two and a half groups: new tickets and replies (some replying within the same
    group), one acknowledgement file per new ticket, nothing pending."""
    subjects = [f"question {i}" for i in range(GROUP * 2)]
    path = _mbox(home / "a.mbox", subjects)
    messages = _count(path)
    result = mailgate(home, "ingest", "--mbox", str(path))
    assert result.returncode == 0, result.stderr
    summary = f"{messages} messages: {messages} stored ({GROUP * 2} new tickets)"
    assert summary.encode() in result.stdout
    outcomes = dict(_rows(home, "SELECT outcome, count(*) FROM inbound_messages GROUP BY 1"))
    assert outcomes == {"new_ticket": GROUP * 2, "reply": messages - GROUP * 2}
    assert _rows(home, "SELECT count(*) FROM inbound_messages WHERE state != 'processed'") == [(0,)]
    # Every acknowledgement was written to the outbox after its group committed.
    assert _rows(home, "SELECT state, count(*) FROM notices GROUP BY 1") == [("sent", GROUP * 2)]
    assert len(list((home / "outbox").glob("notice-*.eml"))) == GROUP * 2


def test_a_failing_message_takes_only_itself_down(home: Path) -> None:
    """A message the database refuses (a trigger, standing in for any failure) rolls its
    group back; the group is redone one by one: the others are processed, the bad one is
    recorded with its error and stays for `mailgate inbound retry`."""
    assert mailgate(home, "db", "upgrade").returncode == 0
    with sqlite3.connect(home / "mailgate.db") as db:
        db.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON tickets WHEN NEW.subject = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
        )
    subjects = [f"question {i}" for i in range(10)] + ["poison"] + ["after"] * 5
    path = _mbox(home / "b.mbox", subjects)
    result = mailgate(home, "ingest", "--mbox", str(path))
    assert result.returncode == 0, result.stderr
    assert b"1 failed (see `mailgate inbound list`)" in result.stdout
    bad = _rows(
        home,
        "SELECT i.state, i.attempts, i.last_error FROM inbound_messages i "
        "WHERE i.ticket_id IS NULL",
    )
    assert len(bad) == 1 and bad[0][0] == "received" and bad[0][1] == 1
    assert "poisoned row" in str(bad[0][2])
    processed = _rows(home, "SELECT count(*) FROM inbound_messages WHERE state = 'processed'")
    assert processed == [(_count(path) - 1,)]


def test_parsing_in_worker_processes_gives_the_same_tickets(home: Path, tmp_path: Path) -> None:
    """--processes 2 and --processes 1 on the same mbox: the same tickets, messages and
    outcomes, in the same order. Messages with a large attachment, so that a few of
    them make several groups (GROUP_BYTES) and parsing runs a group ahead."""
    subjects = [f"question {i}" for i in range(24)]
    path = _mbox(home / "c.mbox", subjects, attachment=bytes(range(256)) * 2000)
    assert path.stat().st_size > 1.5 * GROUP_BYTES
    other = tmp_path / "other"
    other.mkdir()
    (other / "mailgate.toml").write_text(
        (home / "mailgate.toml").read_text().replace(str(home), str(other))
    )
    assert mailgate(home, "ingest", "--mbox", str(path), "--processes", "2").returncode == 0
    assert mailgate(other, "ingest", "--mbox", str(path), "--processes", "1").returncode == 0
    query = (
        "SELECT t.number, t.subject, t.status, m.body_text, m.body_reply, i.outcome "
        "FROM inbound_messages i JOIN tickets t ON t.id = i.ticket_id "
        "JOIN ticket_messages m ON m.inbound_id = i.id ORDER BY i.id"
    )
    parallel = _rows(home, query)
    assert len(parallel) == _count(path)
    assert parallel == _rows(other, query)
    # The workers sent the notices of each committed group: the same ones, each written.
    notices = "SELECT id, kind, recipient, state FROM notices ORDER BY id"
    sent = _rows(home, notices)
    assert sent == _rows(other, notices)
    assert {state for *_, state in sent} == {"sent"}
    written = sorted(p.name for p in (home / "outbox").glob("notice-*.eml"))
    assert written == sorted(f"notice-{n}.eml" for n, *_ in sent)


def test_a_workers_failed_sending_is_logged_by_the_importing_process(home: Path) -> None:
    """The outbox cannot be written (a file stands where its folder should be) and one
    attempt is all a notice gets: the workers give every notice up, and the importing
    process logs each, once, without a traceback."""
    config = home / "mailgate.toml"
    config.write_text(config.read_text() + "[outbound]\nmax_attempts = 1\n")
    (home / "outbox").write_text("not a folder")
    path = _mbox(home / "c.mbox", [f"question {i}" for i in range(6)])
    result = mailgate(home, "ingest", "--quiet", "--mbox", str(path), "--processes", "2")
    assert result.returncode == 0, result.stderr
    failed = _rows(home, "SELECT id, state, last_error FROM notices ORDER BY id")
    assert len(failed) == 6 and {state for _, state, _ in failed} == {"failed"}, failed
    assert all("cannot write to" in error for *_, error in failed)
    # Each line as the text formatter writes it: date, time, then the record.
    logged = [line.split(b" ", 2)[2] for line in result.stderr.splitlines()]
    assert sorted(logged) == sorted(
        f"WARNING mailgate.outbound.delivery: notice {n} failed after 1 attempts".encode()
        for n, *_ in failed
    ), result.stderr
    assert b"Traceback" not in result.stderr


def test_the_workers_run_nicer_than_the_importing_process() -> None:
    """A worker's priority is NICER steps below the importing process's (at most 19),
    so its parsing and sending take no CPU from the database's one writer."""
    context = multiprocessing.get_context("spawn")
    settings = Settings(security=SecuritySettings(secret=SECRET))
    with ProcessPoolExecutor(
        max_workers=1,
        mp_context=context,
        initializer=parse_pool.start,
        initargs=(settings, context.Queue(), {}),
    ) as pool:
        niceness = pool.submit(os.nice, 0).result()
    assert niceness == min(19, os.nice(0) + parse_pool.NICER)


def test_groups_hold_at_most_group_messages_or_group_bytes() -> None:
    """Many small messages: groups of GROUP; large ones: as many as fit in GROUP_BYTES
    (one alone when it is larger); nothing lost or reordered."""
    from mailgate.inbound.bulk import _groups
    from mailgate.inbound.files import FileMessage

    small = [FileMessage(b"x" * 10, f"s{i}") for i in range(GROUP * 2 + 5)]
    assert [len(g) for g in _groups(small)] == [GROUP, GROUP, 5]
    big = [FileMessage(b"x" * (GROUP_BYTES // 3), f"b{i}") for i in range(7)]
    huge = [FileMessage(b"x" * (GROUP_BYTES + 1), "h")]
    grouped = list(_groups(big + huge + small[:2]))
    assert [len(g) for g in grouped] == [3, 3, 1, 1, 2]
    assert [m.ref for g in grouped for m in g] == [m.ref for m in big + huge + small[:2]]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"no separator\n",
        b"From a Mon\nSubject: 1\n\nbody\n\nFrom b Tue\nSubject: 2\n\nx\n",
        b"From a\nx\nFrom b\n\n\nFrom c",
        b"preamble\n\nFrom a\r\nS: 1\r\n\r\nb\r\n\r\nFrom b\n>From not\n From no\nFrom\n",
        b"From a\n\n",
        b"\nFrom a\nFrom \n",
    ],
)
@pytest.mark.parametrize("chunk", [1, 2, 7, 1 << 20])
def test_mbox_messages_split_as_the_mailbox_module_does(
    tmp_path: Path, data: bytes, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mbox is split where ``mailbox.mbox`` splits it, with the same refs, wherever
    the chunks it is read in happen to end."""
    from mailgate.inbound import files
    from mailgate.inbound.files import mbox_messages

    monkeypatch.setattr(files, "TOC_CHUNK", chunk)

    path = tmp_path / "in.mbox"
    path.write_bytes(data)
    box = mailbox.mbox(str(path), create=False)
    try:
        expected = []
        for key in box.iterkeys():
            raw = box.get_bytes(key, from_=True)
            raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
            expected.append((raw, f"mbox:{path.resolve()}#{key}"))
    finally:
        box.close()
    count, messages = mbox_messages(path)
    assert count == len(expected)
    assert [(m.raw, m.ref) for m in messages] == expected


def test_a_group_reads_its_message_ids_once_and_sees_what_it_adds(
    sqlite_url: str, tmp_path: Path
) -> None:
    """On SQLite a group asks for the Message-IDs its messages name in one statement,
    and a later message of the group still finds what an earlier one added: a reply to
    it goes on its ticket, and a second copy of it is a duplicate."""
    settings = make_settings(sqlite_url)
    settings = dataclasses.replace(
        settings, outbound=dataclasses.replace(settings.outbound, folder=str(tmp_path / "out"))
    )
    store = open_store(settings)
    first = build(sender="ann@customer.test", subject="printer", message_id="<p1@customer.test>")
    raws = [
        build(sender=f"c{i}@customer.test", subject=f"q {i}", message_id=f"<q{i}@customer.test>")
        for i in range(5)
    ]
    raws[1:1] = [
        first,
        build(
            sender="ann@customer.test",
            subject="Re: printer",
            message_id="<p2@customer.test>",
            in_reply_to="<p1@customer.test>",
        ),
        b"Received: from mx2.customer.test\n" + first,  # the same message, another route
    ]
    asked: list[str] = []

    def count(conn, cursor, statement: str, *args: object) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("SELECT") and "FROM message_ids" in statement:
            asked.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        totals = import_messages(
            store,
            [FileMessage(raw, f"m{i}") for i, raw in enumerate(raws)],
            settings=settings,
            envelope=Envelope(),
            now=fixed_clock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)),
            refused=RejectionCounter("ingest", datetime.now),
        )
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
        store.engine.dispose()
    assert (totals.stored, totals.tickets, totals.failed) == (len(raws), 6, 0)
    assert len(asked) == 1, asked
    rows = _rows_at(
        sqlite_url,
        "SELECT m.message_id, i.outcome, t.subject FROM inbound_messages i "
        "JOIN tickets t ON t.id = i.ticket_id LEFT JOIN ticket_messages m "
        "ON m.inbound_id = i.id WHERE t.subject = 'printer' ORDER BY i.id",
    )
    assert rows == [
        ("p1@customer.test", "new_ticket", "printer"),
        ("p2@customer.test", "reply", "printer"),
        (None, "duplicate", "printer"),
    ]


def _rows_at(url: str, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        return db.execute(query).fetchall()


def test_a_groups_acknowledgements_keep_the_hourly_limit_as_one_at_a_time(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Eight new tickets from one address (plus-spellings among them) in one group, two
    notices to it already sent this hour: the group counts them, and what it writes as it
    goes, as processing the messages one at a time does: the limit (5) lets three more
    go and suppresses the rest. The group reads the notices once, not once a message."""
    counts: list[str] = []

    def count(conn, cursor, statement: str, *args: object) -> None:  # type: ignore[no-untyped-def]
        if "notices.rate_key IN" in statement:
            counts.append(statement)

    def run(url: str, folder: Path, *, group: bool) -> list[tuple[object, ...]]:
        settings = make_settings(url)
        outbound = dataclasses.replace(settings.outbound, folder=str(folder))
        settings = dataclasses.replace(settings, outbound=outbound)
        store = open_store(settings)
        clock = fixed_clock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
        earlier = [
            build(sender="Ann@Customer.test", subject=f"old {i}", message_id=f"<o{i}@c.test>")
            for i in range(2)
        ]
        spellings = ("ann@customer.test", "Ann+x@customer.test", "ANN@customer.test")
        raws = [
            build(sender=spellings[i % 3], subject=f"q {i}", message_id=f"<q{i}@c.test>")
            for i in range(8)
        ]
        try:
            for batch in ([earlier], [raws] if group else [[raw] for raw in raws]):
                counts.clear()
                event.listen(store.engine, "before_cursor_execute", count)
                for chunk in batch:
                    import_messages(
                        store,
                        [FileMessage(raw, f"m{i}") for i, raw in enumerate(chunk)],
                        settings=settings,
                        envelope=Envelope(),
                        now=clock,
                        refused=RejectionCounter("ingest", datetime.now),
                    )
                event.remove(store.engine, "before_cursor_execute", count)
        finally:
            store.engine.dispose()
        return _rows_at(
            url,
            "SELECT t.subject, n.kind, n.state, n.rate_key FROM notices n "
            "JOIN tickets t ON t.id = n.ticket_id ORDER BY n.id",
        )

    grouped = run(sqlite_url, tmp_path / "a", group=True)
    assert len(counts) == 1, counts
    other = tmp_path / "one" / "mailgate.db"
    other.parent.mkdir()
    alone = run(f"sqlite:///{other}", tmp_path / "b", group=False)
    assert len(counts) == 8  # one at a time: one read a message
    assert grouped == alone
    states = [state for _, _, state, _ in grouped]
    assert states == ["sent"] * 5 + ["suppressed"] * 5, grouped
    assert {key for *_, key in grouped} == {"ann@customer.test"}
