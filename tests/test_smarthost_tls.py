"""The SMTP transport over STARTTLS with AUTH, and over implicit TLS, against real
loopback servers with a throwaway certificate trusted through outbound.smtp.ca_file."""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult

from mailgate.core.settings import OutboundSettings, OutboundSmtpSettings, Settings
from mailgate.db.store import Store
from mailgate.outbound.sender import send_pending
from tests.builders import build, deliver
from tests.conftest import fixed_clock
from tests.smarthost import Smarthost, running

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    crt, key = tmp_path / "host.pem", tmp_path / "host.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(crt),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return crt, key


def _server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth: Any
) -> AuthResult:
    ok = auth.login == b"mailgate" and auth.password == b"s3cret-pass"
    return AuthResult(success=ok, handled=False)


def _settings(settings: Settings, port: int, ca: Path, **smtp: Any) -> Settings:
    config = OutboundSmtpSettings(host="127.0.0.1", port=port, timeout=5, ca_file=str(ca), **smtp)
    return dataclasses.replace(settings, outbound=OutboundSettings(transport="smtp", smtp=config))


def test_starttls_with_auth(store: Store, settings: Settings, cert: tuple[Path, Path]) -> None:
    """STARTTLS, then AUTH (only offered over TLS), then exactly one delivery."""
    deliver(store, settings, build(), fixed_clock(T0))
    host = Smarthost()
    with running(
        host,
        tls_context=_server_context(cert),
        require_starttls=True,
        auth_require_tls=True,
        authenticator=_authenticator,
    ) as port:
        s = _settings(
            settings,
            port,
            cert[0],
            security="starttls",
            username="mailgate",
            password="s3cret-pass",
        )
        report = send_pending(store, settings=s, now=fixed_clock(T0))
    assert report.sent == 1 and len(host.received) == 1


def test_wrong_password_is_temporary(
    store: Store, settings: Settings, cert: tuple[Path, Path]
) -> None:
    """A refused login leaves the notice pending for the operator to fix, and no secret is shown."""
    deliver(store, settings, build(), fixed_clock(T0))
    with running(
        Smarthost(),
        tls_context=_server_context(cert),
        require_starttls=True,
        authenticator=_authenticator,
    ) as port:
        s = _settings(
            settings, port, cert[0], security="starttls", username="mailgate", password="wrong-one"
        )
        report = send_pending(store, settings=s, now=fixed_clock(T0))
    from mailgate.db.models import Notice

    with store.transaction() as session:
        notice = session.get_one(Notice, 1)
    assert report.retrying == 1 and notice.state == "pending"
    assert "login" in notice.last_error and "wrong-one" not in notice.last_error


def test_implicit_tls(store: Store, settings: Settings, cert: tuple[Path, Path]) -> None:
    """security = "tls" speaks TLS from the first byte (port 465 style)."""
    deliver(store, settings, build(), fixed_clock(T0))
    host = Smarthost()
    with running(host, ssl_context=_server_context(cert)) as port:
        report = send_pending(
            store, settings=_settings(settings, port, cert[0], security="tls"), now=fixed_clock(T0)
        )
    assert report.sent == 1 and len(host.received) == 1


def test_untrusted_certificate_is_refused(
    store: Store, settings: Settings, cert: tuple[Path, Path]
) -> None:
    """Without the CA, verification fails: the notice waits rather than going in the clear."""
    deliver(store, settings, build(), fixed_clock(T0))
    host = Smarthost()
    with running(host, tls_context=_server_context(cert), require_starttls=True) as port:
        s = _settings(settings, port, cert[0], security="starttls")
        s = dataclasses.replace(
            s,
            outbound=dataclasses.replace(
                s.outbound, smtp=dataclasses.replace(s.outbound.smtp, ca_file="")
            ),
        )
        report = send_pending(store, settings=s, now=fixed_clock(T0))
    assert report.retrying == 1 and host.received == []
