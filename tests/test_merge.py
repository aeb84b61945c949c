"""Merging tickets (issue 20, item 7), the write side (``tickets.merge.merge``): the
merged ticket's conversation moves to the target, it is closed with a "merged into"
link, and mail answering it later (its notices' Message-IDs, its signed reply token, its
subject tag) lands on the target. SQLite and PostgreSQL; the races on PostgreSQL. The
CLI, portal and API are tests/test_merge_channels.py."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from mailgate.core.errors import ActionRefused, InvalidValue, NotFound
from mailgate.core.settings import MERGED_FROM, MERGED_INTO, Settings
from mailgate.db import queries
from mailgate.db.models import MessageIdEntry, Notice, StoredAttachment, Ticket, TicketMessage
from mailgate.db.store import Store
from mailgate.inbound.intake import Envelope, accept
from mailgate.outbound.sender import send_pending
from mailgate.threading.tokens import reply_token
from mailgate.tickets import changes
from mailgate.tickets.actors import Actor
from mailgate.tickets.mail import process
from mailgate.tickets.merge import merge
from tests.conftest import SECRET
from tests.mail import build
from tests.web_support import Site, make_site

ANN = Actor("ann@example.com", "ann@example.com", "Ann")


def _with_outbox(folder: Path) -> Callable[[Settings], Settings]:
    def adjust(settings: Settings) -> Settings:
        return dataclasses.replace(
            settings, outbound=dataclasses.replace(settings.outbound, folder=str(folder))
        )

    return adjust


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    """Carol's ticket (with an attachment and a note) and Dave's, both Acme; Eve's, Globex."""
    s = make_site(db_url, adjust=_with_outbox(tmp_path / "outbox"))
    yield s
    s.store.engine.dispose()


def _show(site: Site, number: int) -> dict[str, Any]:
    with site.store.transaction() as session:
        return queries.show_ticket(session, number)


def _merge(site: Site, number: int, into: int) -> None:
    with site.store.transaction() as session:
        merge(session, settings=site.settings, number=number, into=into, actor=ANN, at=site.clock())


def _sent(site: Site, folder: Path) -> dict[int, Any]:
    """Send every pending notice to the outbox folder; each notice's mail by its id."""
    send_pending(site.store, settings=site.settings, now=site.clock)
    return {
        int(path.stem.removeprefix("notice-")): message_from_bytes(
            path.read_bytes(), policy=policy.default
        )
        for path in folder.glob("notice-*.eml")
    }


def _notice(site: Site, kind: str, number: int) -> Notice:
    with site.store.transaction() as session:
        return session.scalars(
            select(Notice)
            .join(Ticket, Ticket.id == Notice.ticket_id)
            .where(Notice.kind == kind, Ticket.number == number)
            .order_by(Notice.id.desc())
        ).first()


def test_the_conversation_moves_and_the_merged_ticket_closes(site: Site) -> None:
    """Messages (the note too), attachments, participants and Message-IDs move; #carol is
    closed with a "merged into" link, #dave gets "merged from"; a history event on each;
    both requesters get the status notice."""
    carol, dave = site.numbers["carol"], site.numbers["dave"]
    moved_ids = [m["id"] for m in _show(site, carol)["messages"]]
    own_ids = [m["id"] for m in _show(site, dave)["messages"]]
    _merge(site, carol, dave)
    source, target = _show(site, carol), _show(site, dave)
    assert source["messages"] == [] and source["participants"] == []
    assert (source["status"], source["closed_at"] is not None) == ("Closed", True)
    assert [m["id"] for m in target["messages"]] == sorted([*moved_ids, *own_ids])
    assert sum(len(m["attachments"]) for m in target["messages"]) == 1
    assert [m["direction"] for m in target["messages"] if m["id"] in moved_ids] == [
        "inbound",
        "note",
    ]
    assert target["participants"] == [
        {"email": "carol@acme.test", "role": "cc"},  # her row, moved: in id order
        {"email": "dave@acme.test", "role": "requester"},
    ]
    assert source["links"] == [{"number": dave, "kind": MERGED_INTO}]
    assert target["links"] == [{"number": carol, "kind": MERGED_FROM}]
    events = [(e["actor"], e["action"], e["new"]) for e in source["history"][-2:]]
    assert events == [
        ("ann@example.com", "status", "Closed"),
        ("ann@example.com", "merged_into", str(dave)),
    ]
    received = target["history"][-1]
    assert (received["action"], received["new"], received["detail"]) == (
        "merged_from",
        str(carol),
        {"messages": "2", "participants": "1", "message_ids": "3"},
    )
    with site.store.transaction() as session:
        left = session.scalars(
            select(MessageIdEntry).join(Ticket).where(Ticket.number == carol)
        ).all()
        on = session.scalar(
            select(Ticket.number)
            .join(TicketMessage, TicketMessage.ticket_id == Ticket.id)
            .join(StoredAttachment, StoredAttachment.ticket_message_id == TicketMessage.id)
            .where(StoredAttachment.id == site.attachment_id)
        )
    assert left == [] and on == dave
    told = [(n.kind, n.recipient, n.detail.get("status")) for n in site.notices()]
    assert told == [
        ("status_changed", "carol@acme.test", "Closed"),
        ("status_changed", "dave@acme.test", "New"),
    ]


def test_a_reply_to_the_merged_tickets_notice_lands_on_the_target(
    site: Site, tmp_path: Path
) -> None:
    """Carol answers the acknowledgement of her ticket after it was merged into Dave's:
    real mail with In-Reply-To/References of that notice and its signed reply token. It
    is added to the target as her reply, not refused as mail to a closed ticket; so is
    an answer to the merge's own notice, and one with only the token or the subject tag,
    also after the target is merged on in turn."""
    outbox = tmp_path / "outbox"
    carol, dave = site.numbers["carol"], site.numbers["dave"]
    ack = _notice(site, "acknowledgement", carol)
    sent = _sent(site, outbox)[ack.id]
    reply_to = str(sent["Reply-To"])
    assert reply_to.startswith("support+") and sent["Message-ID"] == f"<{ack.message_id}>"
    _merge(site, carol, dave)

    def answer(body: str, **headers: str) -> dict[str, Any]:
        number = site.ingest(build(sender="Carol <carol@acme.test>", body=body, **headers))
        assert number == target
        message = _show(site, target)["messages"][-1]
        assert message["body"] == body.strip() and not message["after_close"]
        return message

    target = dave
    thread = f"{sent['References'] or ''} {sent['Message-ID']}".strip()
    by_headers = answer(
        "Still burning.\n",
        to=reply_to,
        subject=f"Re: {sent['Subject']}",
        in_reply_to=sent["Message-ID"],
        references=thread,
    )
    assert by_headers["thread_method"] == "references"
    # The merge's own notice about #carol (closed: no reply token in it).
    merged_notice = _notice(site, "status_changed", carol)
    mail = _sent(site, outbox)[merged_notice.id]
    assert mail["Reply-To"] is None
    assert answer("Why closed?\n", in_reply_to=mail["Message-ID"])["thread_method"] == (
        "references"
    )
    assert answer("Token only.\n", to=reply_to, subject="hello")["thread_method"] == "token"
    tagged = answer("Tag only.\n", subject=f"Re: [#{carol}] Printer on fire")
    assert tagged["thread_method"] == "subject_tag"
    # Dave's ticket is merged on into a third: #carol's mail follows the chain.
    third = site.ingest(build(sender="Dave <dave@acme.test>", subject="Printer, again"))
    _merge(site, dave, third)
    target = third
    assert answer("Third time.\n", to=reply_to, subject="x")["thread_method"] == "token"
    assert answer("By id.\n", in_reply_to=sent["Message-ID"])["thread_method"] == "references"
    assert _show(site, carol)["messages"] == [] and _show(site, dave)["messages"] == []


@pytest.mark.parametrize(
    ("pair", "error", "words"),
    [
        (("carol", "carol"), ActionRefused, "cannot be merged into itself"),
        (("carol", None), NotFound, "no ticket #99"),
        (("carol", "eve"), ActionRefused, "different customer accounts"),
    ],
)
def test_refusals(
    site: Site, pair: tuple[str, str | None], error: type[Exception], words: str
) -> None:
    """Nothing changes when a merge is refused."""
    number = site.numbers[pair[0]]
    into = site.numbers[pair[1]] if pair[1] else 99
    with pytest.raises(error, match=words):
        _merge(site, number, into)
    assert _show(site, number)["status"] == "New" and _show(site, number)["messages"]
    assert site.notices() == []


def test_closed_and_merged_tickets_are_refused_either_way(site: Site) -> None:
    carol, dave, eve = site.numbers["carol"], site.numbers["dave"], site.numbers["eve"]
    with site.store.transaction() as session:
        changes.close(session, settings=site.settings, number=eve, actor=ANN, at=site.clock())
    other = site.ingest(build(sender="Eve <eve@globex.test>", subject="Another"))
    with pytest.raises(ActionRefused, match=f"ticket #{eve} is Closed. This ticket is closed"):
        _merge(site, eve, other)
    with pytest.raises(ActionRefused, match=f"ticket #{eve} is Closed: a ticket is merged into"):
        _merge(site, other, eve)
    _merge(site, carol, dave)
    with pytest.raises(ActionRefused, match=f"ticket #{carol} was merged into #{dave}$"):
        _merge(site, carol, dave)
    with pytest.raises(ActionRefused, match=f"merged into #{dave}; merge into #{dave} instead"):
        _merge(site, dave, carol)


def test_no_hand_made_merge_links(site: Site) -> None:
    """ "merged into" and "merged from" are the system's own link kinds."""
    carol, dave = site.numbers["carol"], site.numbers["dave"]
    for kind, settings in ((MERGED_INTO, site.settings), (MERGED_FROM, None)):
        with (
            pytest.raises(InvalidValue, match="made by mailgate itself"),
            site.store.transaction() as session,
        ):
            changes.link(
                session,
                number=carol,
                other_number=dave,
                actor=ANN,
                at=site.clock(),
                kind=kind,
                settings=settings,
            )
    assert _show(site, carol)["links"] == []


# --- Races (PostgreSQL): the lock order, and mail arriving during a merge ------------


def _blocked_by(store: Store, holder_pid: int) -> int:
    """How many connections wait for a lock ``holder_pid`` holds."""
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE :holder = ANY(pg_blocking_pids(pid))"
                ),
                {"holder": holder_pid},
            ).scalar_one()
        )


def _wait_until_blocked(store: Store, holder_pid: int, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 20
    while _blocked_by(store, holder_pid) == 0:
        assert thread.is_alive() and time.monotonic() < deadline, "never waited for the lock"
        time.sleep(0.02)


def _pg_pid(session: Any) -> int:
    return int(session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


@pytest.fixture
def pg_site(pg_url: str, tmp_path: Path) -> Iterator[Site]:
    s = make_site(pg_url, adjust=_with_outbox(tmp_path / "outbox"))
    yield s
    s.store.engine.dispose()


@pytest.mark.postgres
def test_a_merge_locks_the_lower_id_first(pg_site: Site) -> None:
    """Merging the newer ticket into the older one still locks the older first: while
    another transaction holds the older, the merge waits without holding the newer, so
    that transaction can take the newer too (no deadlock between two merges)."""
    site = pg_site
    older, newer = site.numbers["carol"], site.numbers["dave"]
    errors: list[BaseException] = []

    def merge_newer_into_older() -> None:
        try:
            _merge(site, newer, older)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    with site.store.transaction() as holder:
        holder.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
        holder.execute(sa.text("SELECT id FROM tickets WHERE number = :n FOR UPDATE"), {"n": older})
        thread = threading.Thread(target=merge_newer_into_older)
        thread.start()
        _wait_until_blocked(site.store, _pg_pid(holder), thread)
        # Would time out (or deadlock) had the merge taken the newer ticket first.
        holder.execute(sa.text("SELECT id FROM tickets WHERE number = :n FOR UPDATE"), {"n": newer})
    thread.join(timeout=30)
    assert not thread.is_alive() and errors == []
    assert _show(site, newer)["links"] == [{"number": older, "kind": MERGED_INTO}]


@pytest.mark.postgres
@pytest.mark.parametrize("by", ["references", "token"])
def test_mail_read_before_a_merge_commits_follows_it(pg_site: Site, by: str) -> None:
    """A reply processed while the merge is uncommitted waits for the merged ticket's
    lock, then finds it merged: it is added to the target, not kept as after-close.
    By its thread headers (the lock is taken as the index is read) or by its token (the
    ticket is read unlocked first, and locked once resolved)."""
    site = pg_site
    carol, dave = site.numbers["carol"], site.numbers["dave"]
    first_id = _show(site, carol)["messages"][0]["message_id"]
    reply = build(
        sender="Carol <carol@acme.test>",
        body="Any news?\n",
        **(
            {"in_reply_to": f"<{first_id}>"}
            if by == "references"
            else {"to": f"support+{reply_token(carol, SECRET)}@example.com"}
        ),
    )
    results: list[Any] = []

    def deliver() -> None:
        accepted = accept(
            site.store, reply, source="ingest", envelope=Envelope(), max_bytes=10**7, now=site.clock
        )
        results.append(
            process(site.store, accepted.inbound_id, settings=site.settings, now=site.clock)
        )

    with site.store.transaction() as session:
        merge(session, settings=site.settings, number=carol, into=dave, actor=ANN, at=site.clock())
        thread = threading.Thread(target=deliver)
        thread.start()
        _wait_until_blocked(site.store, _pg_pid(session), thread)
    thread.join(timeout=30)
    assert not thread.is_alive() and len(results) == 1
    assert (results[0].outcome, results[0].ticket_number) == ("reply", dave)
    last = _show(site, dave)["messages"][-1]
    assert (last["body"], last["thread_method"], last["after_close"]) == ("Any news?", by, False)
