"""A table of malformed and oversized mail (issue 10): each case ends in a clear outcome
(processed, quarantined with a reason, or refused with a code) within bounded time and
memory. Peak memory is measured with tracemalloc (Python allocations, all threads)."""

from __future__ import annotations

import contextlib
import io
import smtplib
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa

from mailgate.core.errors import PermanentFailure
from mailgate.core.message import ParseRefused, parse
from mailgate.core.settings import LimitsSettings, Settings
from mailgate.db.store import Store
from mailgate.inbound.intake import Envelope, accept
from mailgate.tickets.mail import process
from tests.conftest import make_settings
from tests.faults.support import peak_rss_kib
from tests.smtp_support import SUPPORT, count, migrated_store, serving, smtp_settings

pytestmark = pytest.mark.faults

MIB = 1024 * 1024
T = TypeVar("T")
HEAD = (
    "From: Alice <alice@customer.test>\r\nTo: support@example.com\r\n"
    "Date: Mon, 05 Jan 2026 09:30:00 +0000\r\n"
)


def _now() -> datetime:
    return datetime.now(UTC)


def deep_nesting(levels: int = 1000) -> bytes:
    parts = [HEAD + "Subject: deep\r\nMessage-ID: <deep@customer.test>\r\nMIME-Version: 1.0\r\n"]
    for i in range(levels):
        parts.append(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n')
    parts.append("Content-Type: text/plain\r\n\r\nbottom\r\n")
    for i in reversed(range(levels)):
        parts.append(f"--b{i}--\r\n")
    return "".join(parts).encode()


def many_parts(n: int = 5000) -> bytes:
    body = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(n))
    return (
        HEAD + "Subject: parts\r\nMessage-ID: <parts@customer.test>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + body + "--b--\r\n"
    ).encode()


def huge_header() -> bytes:
    return (
        HEAD + "Subject: " + "x" * MIB + "\r\nMessage-ID: <hh@customer.test>\r\n\r\nbody\r\n"
    ).encode()


def many_headers(n: int = 10_000) -> bytes:
    extra = "".join(f"X-Filler-{i}: {i}\r\n" for i in range(n))
    return (
        HEAD + "Subject: headers\r\nMessage-ID: <mh@customer.test>\r\n" + extra + "\r\nbody\r\n"
    ).encode()


def nul_bytes() -> bytes:
    return (
        HEAD.encode() + b"Subject: nul\x00byte\r\nMessage-ID: <nul@customer.test>\r\n\r\n"
        b"before\x00after\x00\x00\r\n"
    )


def bad_charsets() -> bytes:
    return (
        HEAD.encode() + b"Subject: =?x-no-such-charset?B?w6k=?= =?utf-8?Q?bad=ZZ?=\r\n"
        b"Message-ID: <cs@customer.test>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n\xe9\xff\xfe\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-7\r\n\r\n+ZeVnLIqe-\xff\r\n--b--\r\n"
    )


def zip_bomb(expanded: int = 200 * MIB) -> bytes:
    """A zip of ``expanded`` bytes of zeros: a few hundred KB that inflate a thousandfold."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        chunk = bytes(MIB)
        for _ in range(expanded // MIB):
            member.write(chunk)
    return buffer.getvalue()


def with_attachment(name: str, content: bytes, subtype: str, mid: str) -> bytes:
    outer = MIMEMultipart()
    outer["From"] = "Alice <alice@customer.test>"
    outer["To"] = SUPPORT
    outer["Subject"] = "attachment"
    outer["Message-ID"] = f"<{mid}@customer.test>"
    outer.attach(MIMEText("see attached"))
    part = MIMEApplication(content, subtype)
    part.add_header("Content-Disposition", "attachment", filename=name)
    outer.attach(part)
    return outer.as_bytes().replace(b"\n", b"\r\n")


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], bytes]
    state: str  # processed | quarantined
    reason: str = ""  # in last_error, for a quarantine
    trace: bool = True


CASES = [
    Case("nesting 1000 deep", deep_nesting, "quarantined", "nesting", trace=False),
    Case("5000 parts", many_parts, "quarantined", "limits.max_parts"),
    Case("1 MB header", huge_header, "processed"),
    Case("10000 headers", many_headers, "quarantined", "limits.max_headers"),
    Case("NUL bytes", nul_bytes, "processed"),
    Case("bad charsets", bad_charsets, "processed"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Settings, Store]]:
    settings = make_settings(f"sqlite:///{tmp_path / 'm.db'}")
    s = migrated_store(settings)
    yield settings, s
    s.engine.dispose()


def _measured(fn: Callable[[], T], *, trace: bool = True) -> tuple[T, float, float, float]:
    """fn's result, seconds, tracemalloc peak MiB (0 untraced) and the growth of the
    process's peak RSS MiB (0 when it stays under an earlier peak). Tracing costs time
    in deep recursion and big copies: those cases are measured by RSS alone."""
    rss = peak_rss_kib()
    if trace:
        tracemalloc.start()
    started = time.monotonic()
    try:
        result = fn()
    finally:
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        tracemalloc.stop()
    return result, seconds, peak / MIB, (peak_rss_kib() - rss) / 1024


def _parse_seconds(raw: bytes, settings: Settings) -> float:
    """How long ``parse`` takes, untraced (tracemalloc distorts deep recursion)."""
    started = time.monotonic()
    with contextlib.suppress(ParseRefused):
        parse(raw, settings.limits)
    return time.monotonic() - started


def _ingest(settings: Settings, store: Store, raw: bytes) -> sa.Row[tuple[object, ...]]:
    inbound_id = accept(
        store,
        raw,
        source="smtp",
        envelope=Envelope(),
        max_bytes=settings.smtp.max_message_bytes,
        now=_now,
    ).inbound_id
    process(store, inbound_id, settings=settings, now=_now)
    with store.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT id, state, outcome, last_error FROM inbound_messages WHERE id = :i"),
            {"i": inbound_id},
        ).one()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_mail_ends_in_a_clear_outcome(case: Case, store: tuple[Settings, Store]) -> None:
    settings, s = store
    raw = case.build()
    parse_seconds = _parse_seconds(raw, settings)
    row, seconds, peak, rss = _measured(lambda: _ingest(settings, s, raw), trace=case.trace)
    print(
        f"\n{case.name}: {len(raw) / MIB:.2f} MiB in, {row.state}/{row.outcome} "
        f"{row.last_error[:70]!r}, parse {parse_seconds:.2f}s, ingest+process "
        f"{seconds:.2f}s, tracemalloc peak {peak:.1f} MiB, peak RSS +{rss:.1f} MiB"
    )
    assert row.state == case.state, row.last_error
    assert case.reason in row.last_error
    assert parse_seconds < 10
    assert seconds < 30
    assert peak < 64 + 30 * len(raw) / MIB
    assert rss < 256


def test_zip_bomb_is_stored_opaque_never_expanded(store: tuple[Settings, Store]) -> None:
    settings, s = store
    bomb = zip_bomb()
    raw = with_attachment("report.zip", bomb, "zip", "bomb")
    row, seconds, peak, rss = _measured(lambda: _ingest(settings, s, raw))
    print(
        f"\nzip bomb: {len(bomb) / 1024:.0f} KiB zip of 200 MiB, {row.state}/{row.outcome}, "
        f"{seconds:.2f}s, tracemalloc peak {peak:.1f} MiB, peak RSS +{rss:.1f} MiB"
    )
    assert row.state == "processed"
    with s.engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT filename, content_type, size, content FROM attachments")
        ).all()
    assert [(a.filename, a.size, bytes(a.content)) for a in stored] == [
        ("report.zip", len(bomb), bomb)
    ]
    assert peak < 64  # expanding it would take 200 MiB
    assert seconds < 30


def test_attachment_over_the_limit_is_kept_in_raw_only(tmp_path: Path) -> None:
    """Under smtp.max_message_bytes but over limits.max_attachment_bytes: the message
    is processed and the attachment recorded as omitted, with the reason."""
    settings = make_settings(
        f"sqlite:///{tmp_path / 'm.db'}", limits=LimitsSettings(max_attachment_bytes=MIB)
    )
    s = migrated_store(settings)
    try:
        raw = with_attachment("big.bin", bytes(3 * MIB), "octet-stream", "big")
        row, seconds, peak, _ = _measured(lambda: _ingest(settings, s, raw))
        with s.engine.connect() as conn:
            [(content, omitted)] = conn.execute(
                sa.text("SELECT content, omitted FROM attachments")
            ).all()
    finally:
        s.engine.dispose()
    print(f"\n3 MiB attachment over a 1 MiB limit: {omitted!r}, {seconds:.2f}s, {peak:.1f} MiB")
    assert row.state == "processed"
    assert content is None and "max_attachment_bytes" in omitted


def test_50_mb_attachment_is_refused_552_by_smtp(tmp_path: Path) -> None:
    """Over smtp.max_message_bytes (25 MiB by default): 552 at the end of DATA, nothing
    stored, and the receiver does not hold the whole message in memory several times."""
    raw = with_attachment("huge.bin", bytes(50 * MIB), "octet-stream", "huge")
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    assert len(raw) > settings.smtp.max_message_bytes
    with pytest.raises(PermanentFailure):
        accept(
            migrated_store(settings),
            raw,
            source="smtp",
            envelope=Envelope(),
            max_bytes=settings.smtp.max_message_bytes,
            now=_now,
        )

    def send() -> tuple[int, bytes, int, bytes]:
        with serving(settings) as running, smtplib.SMTP(running.host, running.port) as smtp:
            # With SIZE declared the server refuses at MAIL FROM, before any data.
            with pytest.raises(smtplib.SMTPSenderRefused) as early:
                smtp.sendmail("alice@customer.test", [SUPPORT], raw)
            # Without SIZE (an MTA need not say) it reads, discards and refuses at the end.
            smtp.rset()
            assert smtp.mail("alice@customer.test")[0] == 250
            assert smtp.rcpt(SUPPORT)[0] == 250
            code, text = smtp.data(raw)
            return early.value.smtp_code, early.value.smtp_error, code, text

    (size_code, size_text, code, text), seconds, _, rss = _measured(send, trace=False)
    print(
        f"\n50 MiB attachment ({len(raw) / MIB:.0f} MiB message) by SMTP: with SIZE {size_code} "
        f"{size_text[:40]!r}; without SIZE after DATA {code} {text[:50]!r}; {seconds:.2f}s, "
        f"peak RSS +{rss:.1f} MiB (client and server in this process)"
    )
    assert size_code == 552 and code == 552
    assert count(settings) == 0
    assert seconds < 60
    assert rss < 6 * len(raw) / MIB
