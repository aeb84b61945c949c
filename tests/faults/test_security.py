"""Security checks of issue 10: no open relay, no header injection through configurable
fields, no path traversal through attachment names, no AUTH in the clear."""

from __future__ import annotations

import smtplib
import unicodedata
from datetime import UTC, datetime
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailgate.core import config
from mailgate.core.errors import ConfigError
from mailgate.core.settings import SmtpSettings
from mailgate.inbound.intake import Envelope, accept
from mailgate.outbound.compose import Envelope as NoticeEnvelope
from mailgate.outbound.compose import compose
from mailgate.outbound.render import Rendered
from mailgate.tickets.mail import process
from tests.conftest import SECRET, make_settings
from tests.smtp_support import SUPPORT, count, migrated_store, serving, smtp_settings
from tests.test_smtp_tls import certificate  # noqa: F401 - the fixture

pytestmark = pytest.mark.faults

RELAY_ATTEMPTS = [
    "victim@other.test",
    "victim%other.test@example.com",  # percent hack
    "support%other.test@example.com",
    "@example.com:victim@other.test",  # source route to a foreign mailbox
    "@example.com,@relay.test:victim@other.test",
    '"victim@other.test"@example.com',  # quoted local part
    '"support@example.com"@other.test',
    "victim@other.test@example.com",
    "support@example.com@other.test",
    "other.test!victim@example.com",  # bang path
    "support@[127.0.0.1]",
    "victim@other.test (support@example.com)",
]


@pytest.mark.parametrize("recipient", RELAY_ATTEMPTS)
def test_relay_forms_are_refused_550_and_nothing_is_stored(tmp_path: Path, recipient: str) -> None:
    settings = smtp_settings(f"sqlite:///{tmp_path / 'm.db'}")
    with serving(settings) as srv, smtplib.SMTP(srv.host, srv.port) as client:
        client.ehlo()
        assert client.mail("spammer@evil.test")[0] == 250
        code, reply = client.docmd("RCPT", f"TO:<{recipient}>")
        print(f"\nRCPT TO:<{recipient}> -> {code} {reply.decode()[:60]}")
        assert code == 550 or (500 <= code < 560 and code != 552), (code, reply)
        assert client.docmd("DATA")[0] == 503
    assert count(settings) == 0


def _notice(**more: str) -> NoticeEnvelope:
    return NoticeEnvelope(1, "acknowledgement", "jo@acme.test", 7, "mg.7.ab.cd@example.com", **more)


RENDERED = Rendered("en", "Ticket #7 received", "Your ticket is #7.", "<p>#7</p>")
INJECTED = "support@example.com\r\nBcc: victim@other.test"


@pytest.mark.parametrize("value", [INJECTED, "support@example.com\nBcc:victim@other.test"])
def test_crlf_in_outbound_from_fails_check_config(tmp_path: Path, value: str) -> None:
    path = tmp_path / "mailgate.toml"
    escaped = value.replace("\r", "\\r").replace("\n", "\\n")
    path.write_text(f'[security]\nsecret = "{SECRET}"\n[outbound]\nfrom = "{escaped}"\n')
    with pytest.raises(ConfigError) as refused:
        config.load(path, {})
    assert "outbound.from" in str(refused.value)


@pytest.mark.parametrize(
    ("from_address", "in_reply_to", "subject"),
    [
        (INJECTED, "", RENDERED.subject),
        ("support@example.com", "a@b.test\nBcc: victim@other.test", RENDERED.subject),
        ("support@example.com", "a@b.test\n", RENDERED.subject),
        ("support@example.com", "", "Ticket #7\r\nBcc: victim@other.test"),
    ],
)
def test_composed_notices_carry_no_injected_header(
    from_address: str, in_reply_to: str, subject: str
) -> None:
    """compose is the last line: whatever reaches it, no extra header comes out (it
    refuses with ValueError, or drops the value). A customer's Message-ID is dropped,
    never a reason for the notice to fail."""
    rendered = Rendered("en", subject, RENDERED.text, RENDERED.html)
    if in_reply_to:
        msg = compose(
            _notice(in_reply_to=in_reply_to),
            rendered,
            from_address=from_address,
            secret=SECRET,
            now=datetime.now(UTC),
        )
        assert "In-Reply-To" not in msg
        return
    try:
        msg = compose(
            _notice(in_reply_to=in_reply_to),
            rendered,
            from_address=from_address,
            secret=SECRET,
            now=datetime.now(UTC),
        )
    except ValueError:
        return
    head = msg.as_bytes().split(b"\r\n\r\n", 1)[0]
    assert b"bcc" not in head.lower()
    assert not msg.get_all("In-Reply-To") or "\n" not in str(msg["In-Reply-To"])


def test_a_clean_in_reply_to_is_still_echoed() -> None:
    msg = compose(
        _notice(in_reply_to="a@b.test"),
        RENDERED,
        from_address="support@example.com",
        secret=SECRET,
        now=datetime.now(UTC),
    )
    assert msg["In-Reply-To"] == "<a@b.test>"


HOSTILE_NAMES = [
    "../../../../etc/passwd",
    "..\\..\\windows\\system32\\drivers\\etc\\hosts",
    "/etc/shadow",
    "C:\\boot.ini",
    "....//....//x.txt",
    "..",
    "a\x00b.txt",
    "con\r\nX-Injected: 1.txt",
    "\u202etxt.exe",
]


def test_attachment_names_are_sanitized(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'm.db'}")
    store = migrated_store(settings)
    try:
        outer = MIMEMultipart()
        outer["From"] = "alice@customer.test"
        outer["To"] = SUPPORT
        outer["Subject"] = "names"
        outer["Message-ID"] = "<names@customer.test>"
        outer.attach(MIMEText("see attached"))
        for i, name in enumerate(HOSTILE_NAMES):
            part = MIMEApplication(f"file {i}".encode(), "octet-stream")
            part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", name))
            outer.attach(part)
        raw = outer.as_bytes()
        now = lambda: datetime.now(UTC)  # noqa: E731
        inbound_id = accept(
            store, raw, source="smtp", envelope=Envelope(), max_bytes=10**7, now=now
        ).inbound_id
        assert process(store, inbound_id, settings=settings, now=now).state == "processed"
        with store.engine.connect() as conn:
            names = list(conn.execute(sa.text("SELECT filename FROM attachments ORDER BY id")))
    finally:
        store.engine.dispose()
    stored = [n for (n,) in names]
    print("\nsanitized names:", stored)
    assert len(stored) == len(HOSTILE_NAMES)
    for name in stored:
        assert name and "/" not in name and "\\" not in name
        assert not name.startswith(".")
        assert not any(ord(c) < 32 or ord(c) == 127 for c in name)
        assert not any(unicodedata.category(c) == "Cf" for c in name)  # no bidi spoofing


def test_auth_is_never_advertised_in_the_clear(
    tmp_path: Path,
    certificate: tuple[Path, Path],  # noqa: F811
) -> None:
    """With credentials: configured without TLS is a config error; with STARTTLS, EHLO in
    the clear offers no AUTH and AUTH is refused; after STARTTLS it is offered."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\n[security]\nsecret = "{SECRET}"\n'
        '[smtp]\nauth_username = "relay"\nauth_password = "x"\n'
    )
    with pytest.raises(ConfigError):
        config.load(path, {})
    cert, key = certificate
    for tls in ("none", "starttls"):  # "none" bypasses the config check on purpose
        settings = smtp_settings(
            url,
            tls=tls,
            tls_cert=str(cert),
            tls_key=str(key),
            auth_username="relay",
            auth_password="x",
        )
        assert isinstance(settings.smtp, SmtpSettings)
        with serving(settings) as srv, smtplib.SMTP(srv.host, srv.port) as client:
            client.ehlo()
            assert "auth" not in client.esmtp_features, (tls, client.esmtp_features)
            assert client.docmd("AUTH", "PLAIN AHJlbGF5AHg=")[0] in (500, 502, 503, 538)
            assert client.mail("a@customer.test")[0] != 250 or client.rcpt(SUPPORT)[0] != 250
    assert count(smtp_settings(url)) == 0
