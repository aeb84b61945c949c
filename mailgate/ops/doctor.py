"""``mailgate doctor``: is this installation able to work? One result per check.

Each check takes the settings and returns a ``Check``; none raises. The database
is opened without migrating it, so "migrations current" reports what is there, and a
SQLite file that does not exist yet is not created.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from mailgate.core.config import sqlite_file
from mailgate.core.settings import ImapMailbox, Settings
from mailgate.core.validation import validate
from mailgate.db.store import Store
from mailgate.inbound.imap import connect as imap_connect
from mailgate.jobs.broker import ping_broker
from mailgate.outbound.render import check_templates

NETWORK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def _reason(exc: BaseException) -> str:
    return imap_connect.describe(getattr(exc, "orig", None) or exc).splitlines()[0]


def shown_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as configured
        return url


def check_config(settings: Settings, *, from_file: bool) -> Iterator[Check]:
    """Cross-field validation (everything but the secret, which has its own line)."""
    problems = validate(settings, settings.source, from_file=from_file)
    secret_prefix = f"{settings.source}: security.secret:"
    others = [p for p in problems if not p.startswith(secret_prefix)]
    if others:
        for problem in others:
            yield Check("config", False, problem)
    else:
        yield Check("config", True, f"{settings.source} is valid")
    secret = [
        p.removeprefix(f"{settings.source}: ") for p in problems if p.startswith(secret_prefix)
    ]
    if secret:
        yield Check("secret", False, secret[0])
    elif not settings.security.secret:
        yield Check("secret", False, "security.secret is not set ($MAILGATE_SECURITY_SECRET)")
    else:
        yield Check("secret", True, "security.secret is set")


FIRST_USE = "SQLite is migrated on first use"


def check_database(settings: Settings) -> Iterator[Check]:
    url = settings.database.url
    path = sqlite_file(url)
    if path is not None and not path.exists():
        yield from _check_new_sqlite(path)
        return
    try:
        store = Store(url, sqlite_busy_timeout_ms=settings.database.sqlite_busy_timeout_ms)
    except Exception as exc:  # noqa: BLE001 - reported as a failed check
        yield Check("database", False, f"{shown_url(url)}: {_reason(exc)}")
        yield Check("migrations", False, "not checked: database unusable")
        return
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        yield Check("database", False, f"{shown_url(url)}: unreachable: {_reason(exc)}")
        yield Check("migrations", False, "not checked: database unreachable")
        store.engine.dispose()
        return
    yield Check("database", True, f"{shown_url(url)} reachable")
    try:
        current, head = store.current_revision(), store.head_revision()
    except Exception as exc:  # noqa: BLE001
        yield Check("migrations", False, f"cannot read the revision: {_reason(exc)}")
    else:
        if current == head:
            yield Check("migrations", True, f"at {head} (current)")
        elif store.is_sqlite:
            # Every role and command migrates a SQLite file in place when it opens it.
            at = f"at {current}; {FIRST_USE} (to {head})" if current else f"none yet; {FIRST_USE}"
            yield Check("migrations", True, at)
        else:
            yield Check(
                "migrations",
                False,
                f"schema at {current or 'none'}, this mailgate needs {head}: "
                "run `mailgate db upgrade`",
            )
    finally:
        store.engine.dispose()


def _check_new_sqlite(path: Path) -> Iterator[Check]:
    """A SQLite file not made yet: fine if the first command to open it can create it."""
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the folders between are created too
    if not os.access(folder, os.W_OK | os.X_OK):
        yield Check("database", False, f"{path} does not exist and {folder} is not writable")
        yield Check("migrations", False, "not checked: database unusable")
        return
    yield Check("database", True, f"{path} does not exist yet; created on first use")
    yield Check("migrations", True, f"none yet; {FIRST_USE}")


def check_broker(settings: Settings, *, timeout: float = NETWORK_TIMEOUT) -> Iterator[Check]:
    url = settings.queue.broker
    if url == "embedded":
        yield Check("broker", True, "embedded (the database is the queue)")
        return
    try:
        ping_broker(url, timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        yield Check("broker", False, f"{shown_url(url)}: cannot connect: {_reason(exc)}")
        return
    yield Check("broker", True, f"{shown_url(url)} reachable")


def check_mailbox(box: ImapMailbox) -> Check:
    name = f"imap {box.name}"
    try:
        client = imap_connect.connect(box)
    except Exception as exc:  # noqa: BLE001
        return Check(name, False, str(exc))
    imap_connect.close(client)
    return Check(name, True, f"{box.host}:{box.port} login as {box.username!r} ok")


def check_outbound(settings: Settings) -> Iterator[Check]:
    out = settings.outbound
    if out.transport != "smtp":
        yield Check("outbound", True, f"{out.transport} transport to {out.folder}")
        return
    c = out.smtp
    where = f"smarthost {c.host}:{c.port}"
    try:
        context = ssl.create_default_context(cafile=c.ca_file or None)
        timeout = min(float(c.timeout), NETWORK_TIMEOUT)
        conn: smtplib.SMTP
        if c.security == "tls":
            conn = smtplib.SMTP_SSL(c.host, c.port, timeout=timeout, context=context)
        else:
            conn = smtplib.SMTP(c.host, c.port, timeout=timeout)
        try:
            code, _ = conn.ehlo()
            if code != 250:
                raise smtplib.SMTPResponseException(code, "EHLO refused")
            if c.security == "starttls":
                conn.starttls(context=context)
                conn.ehlo()
        finally:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()
    except Exception as exc:  # noqa: BLE001
        yield Check("outbound", False, f"{where} ({c.security}): {_reason(exc)}")
        return
    yield Check("outbound", True, f"{where} ({c.security}) answers EHLO")


def check_rendering(settings: Settings) -> Iterator[Check]:
    problems = check_templates(
        settings.outbound.templates, default_language=settings.defaults.language
    )
    for problem in problems:
        yield Check("templates", False, problem)
    if not problems:
        yield Check("templates", True, "every template renders")


def run_checks(settings: Settings, *, from_file: bool, network: bool = False) -> Iterator[Check]:
    """Every check in order, each result as soon as it is known. ``network``: also
    connect to each chat channel's and webhook's host (``channel_checks``)."""
    from mailgate.ops.channel_checks import check_channels  # it builds on Check, above

    steps: list[Callable[[], Iterator[Check]]] = [
        lambda: check_config(settings, from_file=from_file),
        lambda: check_database(settings),
        lambda: check_broker(settings),
        lambda: (check_mailbox(box) for box in settings.imap.mailboxes),
        lambda: check_outbound(settings),
        lambda: check_rendering(settings),
        lambda: check_channels(settings, network=network),
    ]
    for step in steps:
        yield from step()
