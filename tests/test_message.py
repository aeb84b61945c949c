"""Parsing: raw bytes in, ParsedMessage out, for well-formed and broken mail alike."""

from __future__ import annotations

import base64

import pytest

from mailgate.core.attachments import sanitize_filename
from mailgate.core.headers import parse_message_ids, strip_reply_prefix
from mailgate.core.message import ParseRefused, parse
from mailgate.core.settings import LimitsSettings
from mailgate.threading.headers import find_subject_tag
from tests.conftest import DATA
from tests.mail import build

LIMITS = LimitsSettings()


def test_plain_message_fields() -> None:
    """Addresses with display names, subject, body and ids come out as values."""
    raw = build(
        message_id="<m1@customer.test>",
        in_reply_to="<a@x>",
        references="<r1@x> <a@x>",
        cc="Dan <dan@customer.test>",
        headers={"Content-Language": "fr-CA"},
    )
    p = parse(raw, LIMITS)
    assert p.sender is not None and (p.sender.name, p.sender.email) == (
        "Carol Customer",
        "carol@customer.test",
    )
    assert [a.email for a in p.to] == ["support@example.com"]
    assert [(a.name, a.email) for a in p.cc] == [("Dan", "dan@customer.test")]
    assert p.subject == "Printer on fire"
    assert p.text.strip() == "The printer in room 4 is on fire."
    assert p.message_id == "m1@customer.test"
    assert p.in_reply_to == ("a@x",)
    assert p.references == ("r1@x", "a@x")
    assert p.language == "fr"
    assert p.defects == ()


def test_encoded_words_are_decoded() -> None:
    """RFC 2047 subjects and display names arrive decoded."""
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@customer.test>\r\n"
        b"To: support@example.com\r\nSubject: =?iso-8859-1?q?Gr=FC=DFe?=\r\n\r\nhallo\r\n"
    )
    p = parse(raw, LIMITS)
    assert p.subject == "Grüße"
    assert p.sender is not None and p.sender.name == "Jürgen Müller"


def test_html_is_sanitized_and_text_derived() -> None:
    """HTML loses scripts and handlers; an HTML-only mail still gets a text body."""
    raw = (
        b"From: a@customer.test\r\nTo: support@example.com\r\nSubject: h\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p onclick='x()'>Hello <b>there</b></p><script>alert(1)</script><p>Line 2</p>"
    )
    p = parse(raw, LIMITS)
    assert "script" not in p.html and "onclick" not in p.html and "alert" not in p.html
    assert "<b>there</b>" in p.html
    assert p.text == "Hello there\n\nLine 2"


def test_attachments_and_inline_image_keep_content_id() -> None:
    """Attachments come with type, size and content; inline images keep their Content-ID."""
    png = b"\x89PNG\r\n\x1a\nfake"
    raw = build(attachments=[("report.pdf", "application/pdf", b"%PDF-1.4 data")])
    p = parse(raw, LIMITS)
    [pdf] = p.attachments
    assert (pdf.filename, pdf.content_type, pdf.size, pdf.content) == (
        "report.pdf",
        "application/pdf",
        13,
        b"%PDF-1.4 data",
    )
    inline = (
        b"From: a@customer.test\r\nTo: support@example.com\r\nSubject: pic\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=B\r\n\r\n"
        b'--B\r\nContent-Type: text/html\r\n\r\n<img src="cid:img1@x">\r\n'
        b"--B\r\nContent-Type: image/png\r\nContent-ID: <img1@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(png)
        + b"\r\n--B--\r\n"
    )
    p = parse(inline, LIMITS)
    [img] = p.attachments
    assert img.content_id == "img1@x" and img.inline and img.content == png
    assert 'src="cid:img1@x"' in p.html


def test_winmail_dat_is_unpacked() -> None:
    """An Outlook winmail.dat (TNEF) becomes the files inside it."""
    tnef = (DATA / "two-files.tnef").read_bytes()
    raw = build(attachments=[("winmail.dat", "application/ms-tnef", tnef)])
    p = parse(raw, LIMITS)
    assert [(a.filename, a.size) for a in p.attachments] == [("AUTHORS", 244), ("README", 893)]


def test_unreadable_winmail_dat_is_kept_with_a_defect() -> None:
    """A TNEF blob tnefparse cannot read is kept as the attachment it was."""
    raw = build(attachments=[("winmail.dat", "application/ms-tnef", b"not tnef at all")])
    p = parse(raw, LIMITS)
    assert [a.filename for a in p.attachments] == ["winmail.dat"]
    assert any("TNEFDefect" in d for d in p.defects)


def test_attachment_over_cap_keeps_metadata_only() -> None:
    """An attachment over limits.max_attachment_bytes is listed but its content is not kept."""
    raw = build(attachments=[("big.bin", "application/octet-stream", b"x" * 5000)])
    p = parse(raw, LimitsSettings(max_attachment_bytes=1000))
    [big] = p.attachments
    assert big.content is None and big.size == 5000 and "max_attachment_bytes" in big.omitted


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\evil.exe", "evil.exe"),
        ("a\x00b\x1fc.txt", "a_b_c.txt"),
        ("", "attachment-3"),
        ("..", "attachment-3"),
        ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_sanitize_filename(name: str, expected: str) -> None:
    """File names lose directories, control characters and excess length; never empty."""
    assert sanitize_filename(name, 3) == expected


@pytest.mark.parametrize(
    ("raw", "defect"),
    [
        (  # missing closing boundary
            b"From: a@b.test\r\nSubject: t\r\nContent-Type: multipart/mixed; boundary=Z\r\n\r\n"
            b"--Z\r\nContent-Type: text/plain\r\n\r\nbody text\r\n",
            "CloseBoundaryNotFoundDefect",
        ),
        (  # bad charset label
            b"From: a@b.test\r\nSubject: t\r\nContent-Type: text/plain; charset=x-no-such\r\n\r\nbody text \xe9\r\n",
            "CharsetDecodeDefect",
        ),
    ],
)
def test_malformed_mail_is_parsed_with_defects(raw: bytes, defect: str) -> None:
    """Broken MIME is read best-effort and the defect recorded, never refused."""
    p = parse(raw, LIMITS)
    assert "body text" in p.text
    assert any(defect in d for d in p.defects), p.defects


def test_broken_encoded_word_and_raw_8bit_subject() -> None:
    """A broken encoded word stays readable; raw 8-bit header bytes are decoded by the declared charset."""
    raw = (
        b"From: a@b.test\r\nSubject: =?utf-8?q?broken_word\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nx\r\n"
    )
    assert "broken" in parse(raw, LIMITS).subject
    raw8 = b"From: a@b.test\r\nSubject: Gr\xfc\xdfe\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nx\r\n"
    assert parse(raw8, LIMITS).subject == "Grüße"


def test_limits_refuse_with_reason() -> None:
    """Over max_parts, max_depth or max_headers the parser refuses with the limit's name."""
    parts = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\np\r\n" for _ in range(20))
    wide = (
        b"From: a@b.test\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        + parts
        + b"--B--\r\n"
    )
    with pytest.raises(ParseRefused, match="max_parts"):
        parse(wide, LimitsSettings(max_parts=10))
    deep = b"From: a@b.test\r\n"
    for i in range(8):
        deep += f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n".encode()
    deep += b"Content-Type: text/plain\r\n\r\nx\r\n"
    with pytest.raises(ParseRefused, match="max_depth"):
        parse(deep, LimitsSettings(max_depth=4))
    many = b"".join(f"X-H{i}: v\r\n".encode() for i in range(30))
    with pytest.raises(ParseRefused, match="max_headers"):
        parse(b"From: a@b.test\r\n" + many + b"\r\nx", LimitsSettings(max_headers=20))


def test_sender_falls_back_when_from_is_unusable() -> None:
    """No usable From: Sender, Reply-To, then Return-Path name who wrote."""
    raw = b"From: [??????]\r\nReturn-Path: <bounce@list.test>\r\nSubject: x\r\n\r\nbody\r\n"
    p = parse(raw, LIMITS)
    assert p.sender is not None and p.sender.email == "bounce@list.test"


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("<a@x>", ("a@x",)),
        ("<a@x> <b@y>\r\n <a@x>", ("a@x", "b@y")),
        ("a@x", ("a@x",)),
        ("garbage", ()),
        ("", ()),
    ],
)
def test_parse_message_ids(value: str, ids: tuple[str, ...]) -> None:
    """Message-ID lists are read in order, once each, tolerating a bare id."""
    assert parse_message_ids(value) == ids


@pytest.mark.parametrize(
    ("subject", "number"),
    [("Re: help [#123]", 123), ("[# 7 ] x", 7), ("no tag", None), ("[#abc]", None)],
)
def test_find_subject_tag(subject: str, number: int | None) -> None:
    """The subject tag is [<prefix><number>]."""
    assert find_subject_tag(subject, "#") == number


def test_strip_reply_prefix() -> None:
    """Reply and forward prefixes in several languages are stripped."""
    assert strip_reply_prefix("Re: AW: Fwd: hello") == "hello"
    assert strip_reply_prefix("RE[2]: SV: hello") == "hello"


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: a\nX-A: 1\n\nbody\nX-B: 2\n",
        b"Subject: a\r\nX-A: =?utf-8?q?=C3=A9?=\r\n\r\nbody\r\n",
        b"Subject: a\rX-A: 1\r\rbody\r",
        b"From x@y Mon\nSubject: a\n folded\nnot a header\nX-B: 2\n\nbody",
        b"Subject: a\nX-A: 1",
        b"\nSubject: not a header\n\n",
        b"Subject: a\n\r\nX-B: body\n",
        b"Subject: a\x0cb\nX-A: 1\x0b\n\nbody\n\n",
    ],
)
def test_all_headers_reads_only_the_header_section(
    raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every header field, decoded, as when the whole message is handed to the parser."""
    from mailgate.core import prepared

    section = prepared.all_headers(raw)
    monkeypatch.setattr(prepared, "_header_section", lambda whole: whole)
    assert section == prepared.all_headers(raw)
