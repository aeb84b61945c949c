"""The SMTP receiver end to end: a real server on loopback, driven by smtplib and raw sockets."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, text

from mailgate.inbound.smtp.handler import IntakeHandler
from tests.conftest import fixed_clock
from tests.smtp_support import (
    SUPPORT,
    RawClient,
    count,
    message,
    rows,
    serving,
    smtp_settings,
    ticket_list,
    tickets,
    wait_until,
)


def test_accepted_message_becomes_a_ticket(db_url: str) -> None:
    """250 only after the commit; the row keeps envelope and Received: header; a ticket opens."""
    settings = smtp_settings(db_url)
    with serving(settings) as srv:
        with smtplib.SMTP(srv.host, srv.port, local_hostname="mta.customer.test") as client:
            client.ehlo()
            client.mail("alice@customer.test")
            client.rcpt("support+billing@example.com")
            code, reply = client.data(message(1, subject="Invoice missing"))
        assert code == 250 and reply.startswith(b"2.0.0 OK: stored as inbound #")
        assert count(settings) == 1  # committed before the reply, not merely later
    [row] = rows(settings)
    assert row.source == "smtp"
    assert row.envelope_from == "alice@customer.test"
    assert row.envelope_to == ["support+billing@example.com"]
    assert row.client_address == "127.0.0.1"
    assert row.helo == "mta.customer.test"
    head = row.raw.split(b"\r\n")[:3]
    assert head[0] == b"Received: from mta.customer.test ([127.0.0.1])"
    assert head[1].startswith(b"\tby ") and head[1].endswith(b"(mailgate) with ESMTP")
    assert head[2].startswith(b"\tfor <support+billing@example.com>; Mon, 05 Jan 2026")
    assert row.state == "processed" and row.outcome == "new_ticket"
    [ticket] = ticket_list(settings)
    assert ticket["subject"] == "Invoice missing 1"
    assert ticket["requester"] == "alice@customer.test"


@pytest.mark.parametrize(
    "recipient",
    [
        "someone@elsewhere.test",
        "support@example.com.evil.test",
        "support@sub.example.com",
        "sales@example.com",
        "postmaster",
    ],
)
def test_relay_attempt_is_refused(tmp_path: Path, recipient: str) -> None:
    """A recipient that is not one of smtp.addresses gets 550 5.1.1 and nothing is stored."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    with serving(settings) as srv, smtplib.SMTP(srv.host, srv.port) as client:
        client.ehlo()
        client.mail("spammer@evil.test")
        code, reply = client.rcpt(recipient)
        assert code == 550 and reply.startswith(b"5.1.1 ")
        assert client.docmd("DATA")[0] == 503  # no accepted recipient, no transaction
        client.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("spammer@evil.test", [recipient], message())
    assert count(settings) == 0


def test_oversized_message_is_refused_with_552(tmp_path: Path) -> None:
    """SIZE is announced; over max_message_bytes is 552 5.3.4 at MAIL (SIZE=) or after DATA."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}", max_message_bytes=2000)
    big = message(body=("y" * 70 + "\r\n") * 60)
    with serving(settings) as srv, smtplib.SMTP(srv.host, srv.port) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "2000"
        code, reply = client.mail("alice@customer.test", ["SIZE=5000"])
        assert (code, reply[:5]) == (552, b"5.3.4")
        client.rset()
        client.mail("alice@customer.test")  # no SIZE: the limit bites during DATA
        client.rcpt(SUPPORT)
        code, reply = client.data(big)
        assert (code, reply[:5]) == (552, b"5.3.4")
        assert client.sendmail("alice@customer.test", [SUPPORT], message(2)) == {}
    assert count(settings) == 1  # only the small one after the refusal


def test_storage_failure_answers_451_and_stores_nothing(db_url: str) -> None:
    """With the table gone, DATA gets 451 4.3.0; once it is back, the same session stores."""
    settings = smtp_settings(db_url)
    with serving(settings) as srv:
        with srv.store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE inbound_messages RENAME TO inbound_away"))
        with smtplib.SMTP(srv.host, srv.port) as client:
            with pytest.raises(smtplib.SMTPDataError) as info:
                client.sendmail("alice@customer.test", [SUPPORT], message(1))
            assert info.value.smtp_code == 451 and info.value.smtp_error.startswith(b"4.3.0")
            with srv.store.engine.begin() as conn:
                assert conn.execute(text("SELECT count(*) FROM inbound_away")).scalar() == 0
                conn.execute(text("ALTER TABLE inbound_away RENAME TO inbound_messages"))
            client.sendmail("alice@customer.test", [SUPPORT], message(2))
    assert [r.raw.endswith(b"burning.\r\n") for r in rows(settings)] == [True]


def test_full_database_answers_452_and_stores_once_there_is_room(tmp_path: Path) -> None:
    """SQLITE_FULL (here max_page_count, as a full disk) is 452 4.3.1, insufficient system
    storage (RFC 5321 §4.2.3, RFC 3463), not a 250; with room again the same session stores."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    with serving(settings) as srv:
        with srv.store.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

        def cap(dbapi_connection: object, _record: object) -> None:
            dbapi_connection.execute(f"PRAGMA max_page_count={pages}")  # type: ignore[attr-defined]

        # Intake writes through its own engine (it waits for SQLite's lock its own way).
        engines = {srv.store.engine, srv.server.committer.lock_store.engine}
        for engine in engines:
            event.listen(engine, "connect", cap)
            engine.dispose()
        with smtplib.SMTP(srv.host, srv.port) as client:
            with pytest.raises(smtplib.SMTPDataError) as info:
                client.sendmail("alice@customer.test", [SUPPORT], message(1, body="x\r\n" * 20_000))
            assert info.value.smtp_code == 452 and info.value.smtp_error.startswith(b"4.3.1")
            assert count(settings) == 0
            for engine in engines:
                event.remove(engine, "connect", cap)
                engine.dispose()
            client.sendmail("alice@customer.test", [SUPPORT], message(2))
    assert count(settings) == 1


def test_unexpected_storage_error_answers_451(tmp_path: Path) -> None:
    """An error intake does not classify (here a trigger aborting the insert) is logged and 451."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    with serving(settings) as srv:
        with srv.store.engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON inbound_messages "
                    "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
                )
            )
        with (
            smtplib.SMTP(srv.host, srv.port) as client,
            pytest.raises(smtplib.SMTPDataError) as info,
        ):
            client.sendmail("alice@customer.test", [SUPPORT], message(1))
    assert info.value.smtp_code == 451
    assert count(settings) == 0


def test_processing_failure_does_not_change_the_reply(tmp_path: Path) -> None:
    """Processing comes after the 250 decision: when it fails the reply stays 250, the row waits."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    with serving(settings) as srv:
        with srv.store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE tickets RENAME TO tickets_away"))
        with smtplib.SMTP(srv.host, srv.port) as client:
            assert client.sendmail("alice@customer.test", [SUPPORT], message(1)) == {}
    [row] = rows(settings)
    assert row.state == "received" and row.ticket_id is None


def test_not_an_email_is_refused_with_554(tmp_path: Path) -> None:
    """Bytes without a header section are a permanent failure: 554 5.6.0 with intake's reason."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    with (
        serving(settings) as srv,
        smtplib.SMTP(srv.host, srv.port) as client,
        pytest.raises(smtplib.SMTPDataError) as info,
    ):
        client.sendmail("alice@customer.test", [SUPPORT], b"just some words\r\n")
    assert info.value.smtp_code == 554
    assert info.value.smtp_error.startswith(b"5.6.0 Message refused: not an email")
    assert count(settings) == 0


def test_disconnect_during_data_stores_nothing(tmp_path: Path) -> None:
    """A client that vanishes before the final dot leaves no row behind."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    with serving(settings) as srv:
        with RawClient(srv.host, srv.port) as raw:
            assert raw.reply()[0] == 220
            raw.send(b"EHLO c.test\r\n")
            assert raw.reply()[0] == 250
            raw.send(b"MAIL FROM:<alice@customer.test>\r\n")
            assert raw.reply()[0] == 250
            raw.send(f"RCPT TO:<{SUPPORT}>\r\n".encode())
            assert raw.reply()[0] == 250
            raw.send(b"DATA\r\n")
            assert raw.reply()[0] == 354
            raw.send(message(1)[:60])
        wait_until(lambda: srv.server.connection_count == 0, what="the server to drop the client")
        assert srv.server.backlog == 0
    assert count(settings) == 0


def test_fifty_clients_twenty_messages_each_all_become_tickets(db_url: str) -> None:
    """1000 messages over 50 concurrent connections: each is acknowledged and becomes a ticket."""
    settings = smtp_settings(db_url, max_connections_per_ip=50)
    failures: list[BaseException] = []

    def client(n: int, port: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as conn:
                for i in range(20):
                    refused = conn.sendmail(
                        f"user{n}@customer.test", [SUPPORT], message(n * 100 + i)
                    )
                    assert refused == {}
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)

    with serving(settings, stop_timeout=300) as srv:
        threads = [threading.Thread(target=client, args=(n, srv.port)) for n in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert count(settings) == 1000
    assert tickets(settings) == 1000


def test_pipelined_commands_get_replies_in_order(tmp_path: Path) -> None:
    """PIPELINING is announced; MAIL/RCPT/RCPT/DATA in one write: 4 ordered replies (RFC 2920)."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    with serving(settings) as srv, RawClient(srv.host, srv.port) as raw:
        assert raw.reply()[0] == 220
        raw.send(b"EHLO c.test\r\n")
        code, lines = raw.reply()
        assert code == 250 and "PIPELINING" in lines and "8BITMIME" in lines
        raw.send(
            b"MAIL FROM:<alice@customer.test>\r\n"
            b"RCPT TO:<support@example.com>\r\n"
            b"RCPT TO:<bob@elsewhere.test>\r\n"
            b"DATA\r\n"
        )
        assert [raw.reply()[0] for _ in range(4)] == [250, 250, 550, 354]
        body = message(1).replace(b"burning.", b"burning.\r\n..dot-stuffed line")
        raw.send(body + b".\r\nQUIT\r\n")
        assert raw.reply()[0] == 250
        assert raw.reply()[0] == 221
    [row] = rows(settings)
    assert row.envelope_to == ["support@example.com"]
    assert b"\r\n.dot-stuffed line\r\n" in row.raw


def test_utf8_addresses_with_smtputf8(tmp_path: Path) -> None:
    """SMTPUTF8 and 8BITMIME: UTF-8 envelope addresses and headers arrive intact."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    sender, recipient = "josé@exämple.test", "support+ñandú@example.com"
    raw = (
        f"From: José <{sender}>\r\nTo: {recipient}\r\nSubject: Ça ne marche pas\r\n"
        "Message-ID: <u1@exämple.test>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nL'écran reste noir.\r\n"
    ).encode()
    with serving(settings) as srv, smtplib.SMTP(srv.host, srv.port) as client:
        client.ehlo()
        assert client.has_extn("smtputf8") and client.has_extn("8bitmime")
        refused = client.sendmail(
            sender, [recipient], raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )
        assert refused == {}
    [row] = rows(settings)
    assert row.envelope_from == sender and row.envelope_to == [recipient]
    assert f"\tfor <{recipient}>".encode() in row.raw
    assert b"with UTF8SMTP" in row.raw
    [ticket] = ticket_list(settings)
    assert ticket["subject"] == "Ça ne marche pas" and ticket["requester"] == sender


def test_null_sender_is_stored_with_an_empty_reverse_path(tmp_path: Path) -> None:
    """MAIL FROM:<> (bounces, RFC 5321 §4.5.5) is accepted; screening later decides."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    with serving(settings) as srv, smtplib.SMTP(srv.host, srv.port) as client:
        assert client.sendmail("<>", [SUPPORT], message(1)) == {}
    assert rows(settings)[0].envelope_from == ""


def test_too_many_recipients_get_452(tmp_path: Path) -> None:
    """Past smtp.max_recipients each RCPT gets 452 4.5.3; the accepted ones get the message."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}", max_recipients=2)
    with serving(settings) as srv, smtplib.SMTP(srv.host, srv.port) as client:
        client.ehlo()
        client.mail("alice@customer.test")
        assert client.rcpt("support@example.com")[0] == 250
        assert client.rcpt("support+a@example.com")[0] == 250
        code, reply = client.rcpt("support+b@example.com")
        assert (code, reply[:5]) == (452, b"4.5.3")
        assert client.data(message(1))[0] == 250
    assert rows(settings)[0].envelope_to == ["support@example.com", "support+a@example.com"]


def test_bad_sequence_and_syntax_get_standard_codes(tmp_path: Path) -> None:
    """Commands out of order get 503, malformed ones 501/553, unknown ones 500; nothing stored."""
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    with serving(settings) as srv, smtplib.SMTP(srv.host, srv.port) as client:
        assert client.docmd("MAIL", "FROM:<a@customer.test>")[0] == 503  # before EHLO
        client.ehlo()
        assert client.docmd("RCPT", f"TO:<{SUPPORT}>")[0] == 503  # before MAIL
        assert client.docmd("DATA")[0] == 503
        assert client.docmd("MAIL", "TO:<a@customer.test>")[0] == 501
        assert client.docmd("MAIL", "FROM:<a@@>")[0] == 553
        assert client.docmd("MAIL", "FROM:<bad@")[0] == 553  # the stdlib parser's IndexError
        assert client.docmd("MAIL", "FROM:<a@customer.test>")[0] == 250
        assert client.docmd("RCPT", "TO:<bad@")[0] == 553
        client.rset()
        assert client.docmd("FROB")[0] == 500
        assert client.noop()[0] == 250
    assert count(settings) == 0


def test_unexpected_error_in_a_command_is_a_4xx_without_details() -> None:
    """aiosmtpd's catch-all would answer 500 with the exception text; mailgate answers 451."""
    handler = IntakeHandler(
        None,  # type: ignore[arg-type]
        addresses=(SUPPORT,),
        max_recipients=1,
        max_message_bytes=1000,
        hostname="mx.test",
        lmtp=False,
        offer_auth=False,
        now=fixed_clock(),
    )
    reply = asyncio.run(handler.handle_exception(RuntimeError("secret detail")))
    assert reply.startswith("451 4.3.0") and "secret" not in reply
