"""STARTTLS, implicit TLS and AUTH, with a throwaway self-signed certificate."""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailgate.core.errors import ConfigError
from mailgate.core.settings import Settings
from mailgate.db.store import Store
from mailgate.inbound.smtp.server import SmtpServer
from tests.smtp_support import SUPPORT, message, rows, serving, smtp_settings

USER, PASSWORD = "relay", "correct horse battery staple"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailgate test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _client_context(cert: Path) -> ssl.SSLContext:
    """A client that trusts only the test certificate and checks the host name."""
    return ssl.create_default_context(cafile=str(cert))


def _tls_settings(
    tmp_path: Path, certificate: tuple[Path, Path], tls: str, **more: str
) -> Settings:
    cert, key = certificate
    return smtp_settings(
        f"sqlite:///{tmp_path / 'm.db'}", tls=tls, tls_cert=str(cert), tls_key=str(key), **more
    )


def test_starttls_then_auth_then_mail(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    """AUTH is neither offered nor accepted in the clear; mail needs it; after STARTTLS it works."""
    settings = _tls_settings(
        tmp_path, certificate, "starttls", auth_username=USER, auth_password=PASSWORD
    )
    with serving(settings) as srv, smtplib.SMTP(srv.host, srv.port) as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")
        assert client.docmd("AUTH", "PLAIN AHJlbGF5AHg=")[0] == 538  # encryption required
        assert client.docmd("MAIL", "FROM:<alice@customer.test>")[0] == 530  # auth required
        client.starttls(context=_client_context(certificate[0]))
        client.ehlo()
        assert set(client.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        assert client.docmd("MAIL", "FROM:<alice@customer.test>")[0] == 530
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(USER, "wrong password")
        client.user, client.password = USER, PASSWORD
        assert client.auth("LOGIN", client.auth_login, initial_response_ok=False)[0] == 235
        assert client.sendmail("alice@customer.test", [SUPPORT], message(1)) == {}
    [row] = rows(settings)
    assert b"with ESMTPSA" in row.raw


def test_implicit_tls_with_auth(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    """On an implicit-TLS port AUTH (PLAIN) is offered at once and mail is accepted."""
    settings = _tls_settings(
        tmp_path, certificate, "implicit", auth_username=USER, auth_password=PASSWORD
    )
    context = _client_context(certificate[0])
    with serving(settings) as srv, smtplib.SMTP_SSL(srv.host, srv.port, context=context) as client:
        client.ehlo()
        assert not client.has_extn("starttls") and "PLAIN" in client.esmtp_features["auth"]
        assert client.login(USER, PASSWORD)[0] == 235
        assert client.sendmail("alice@customer.test", [SUPPORT], message(1)) == {}
    assert b"with ESMTPSA" in rows(settings)[0].raw


def test_starttls_without_auth_stays_open_to_plain_mx_traffic(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    """Without credentials STARTTLS is opportunistic (RFC 3207 §4) and AUTH never appears."""
    settings = _tls_settings(tmp_path, certificate, "starttls")
    with serving(settings) as srv:
        with smtplib.SMTP(srv.host, srv.port) as plain:
            assert plain.sendmail("alice@customer.test", [SUPPORT], message(1)) == {}
        with smtplib.SMTP(srv.host, srv.port) as secure:
            secure.starttls(context=_client_context(certificate[0]))
            secure.ehlo()
            assert not secure.has_extn("auth")
            assert secure.sendmail("alice@customer.test", [SUPPORT], message(2)) == {}
    assert [b"with ESMTPS;" in r.raw or b"with ESMTPS\r\n" in r.raw for r in rows(settings)] == [
        False,
        True,
    ]


def test_unreadable_certificate_is_a_config_error(tmp_path: Path) -> None:
    """A missing certificate file is reported as smtp.tls_cert, not a traceback."""
    settings = smtp_settings(
        f"sqlite:///{tmp_path / 'm.db'}",
        tls="starttls",
        tls_cert=str(tmp_path / "missing.pem"),
        tls_key=str(tmp_path / "missing.key"),
    )
    store = Store(settings.database.url)
    try:
        with pytest.raises(ConfigError) as info:
            SmtpServer(settings, store, now=lambda: datetime.now(UTC))
    finally:
        store.engine.dispose()
    assert "smtp.tls_cert: cannot load" in info.value.problems[0]
