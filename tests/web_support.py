"""The portal under test: a real app on a real database, seeded through the real mail path."""

from __future__ import annotations

import atexit
import dataclasses
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from starlette.testclient import TestClient

from mailgate.core.settings import AgentSetting, CustomerSetting, Settings, TeamSetting, WebSettings
from mailgate.db.models import Agent, AgentPassword, Notice
from mailgate.db.store import Store, open_store
from mailgate.inbound.intake import Envelope, accept
from mailgate.tickets import messages
from mailgate.tickets import sign_in as signin
from mailgate.tickets.actors import Actor
from mailgate.tickets.mail import process
from mailgate.web.app import create_app
from tests.conftest import QUICK_HASHER, make_settings
from tests.databases import migrate
from tests.mail import build

ANN_PASSWORD = "correct horse battery"
PDF = b"%PDF-1.4 test file\n"


class Clock:
    """A clock the test moves by hand: expiry and rate windows without sleeping."""

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime(2026, 1, 5, 9, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def portal_settings(db_url: str, **web: Any) -> Settings:
    """Defaults plus two customer accounts, two agents and two teams."""
    base = make_settings(db_url)
    return dataclasses.replace(
        base,
        web=dataclasses.replace(WebSettings(base_url="http://testserver"), **web),
        # No automatic assignment: the portal tests assign by hand and count notices.
        teams=(TeamSetting("support", "none"), TeamSetting("billing", "none")),
        agents=(
            AgentSetting("ann@example.com", "Ann", ("support",)),
            AgentSetting("bob@example.com", "Bob", ("billing",)),
        ),
        customers=(
            CustomerSetting("Acme", domains=("acme.test",), admins=("boss@acme.test",)),
            CustomerSetting("Globex", domains=("globex.test",), admins=("chief@globex.test",)),
        ),
    )


@dataclass
class Site:
    settings: Settings
    store: Store
    clock: Clock
    app: Any
    numbers: dict[str, int] = field(default_factory=dict)
    attachment_id: int = 0
    # Notices up to this id came from seeding (the seed mail's acknowledgements);
    # tests count only what they caused.
    notice_baseline: int = 0
    note_text: str = "internal: the customer sounds grumpy"

    def client(self, base_url: str = "http://testserver") -> TestClient:
        return TestClient(self.app, base_url=base_url, follow_redirects=False)

    def ingest(self, raw: bytes) -> int:
        accepted = accept(
            self.store,
            raw,
            source="ingest",
            envelope=Envelope(),
            max_bytes=self.settings.smtp.max_message_bytes,
            now=self.clock,
        )
        result = process(self.store, accepted.inbound_id, settings=self.settings, now=self.clock)
        assert result.ticket_number is not None
        return result.ticket_number

    def notices(self, kind: str | None = None) -> list[Notice]:
        with self.store.transaction() as session:
            query = select(Notice).where(Notice.id > self.notice_baseline).order_by(Notice.id)
            if kind:
                query = query.where(Notice.kind == kind)
            return list(session.scalars(query))


def make_site(
    db_url: str,
    *,
    seed: bool = True,
    adjust: Callable[[Settings], Settings] | None = None,
    **web: Any,
) -> Site:
    """Migrated store, app, and (``seed``) three tickets of two accounts plus a note;
    ``adjust`` changes the portal's settings first (rules, teams, limits)."""
    settings = portal_settings(db_url, **web)
    if adjust is not None:
        settings = adjust(settings)
    seeded = _SeededCopies.key(settings, db_url) if seed else None
    copied = seeded is not None and _SEEDED.copy_to(seeded, db_url)
    if not copied:
        migrate(db_url)
    store = open_store(settings)
    clock = Clock()
    site = Site(settings, store, clock, create_app(settings, store, now=clock))
    if copied:
        assert seeded is not None
        _SEEDED.restore(seeded, site)
    elif seed:
        _seed(site)
        with store.transaction() as session:
            site.notice_baseline = session.scalar(select(func.max(Notice.id))) or 0
        if seeded is not None:
            _SEEDED.keep(seeded, site, db_url)
    return site


class _SeededCopies:
    """Seeded SQLite databases kept per settings, copied for the next site that asks.

    Seeding runs three messages through the mail path and a note through the write
    side; hundreds of portal tests start from exactly that, so each worker seeds once
    per distinct settings and copies the file after (as tests/databases.py does for the
    migrated schema). The copy is the very database seeding made, numbers and all.
    """

    def __init__(self) -> None:
        self._folder: Path | None = None
        self._kept: dict[str, tuple[Path, dict[str, int], int, int]] = {}

    @staticmethod
    def key(settings: Settings, db_url: str) -> str | None:
        """The settings as text, without the database's address; None off SQLite files."""
        if not db_url.startswith("sqlite:///") or ":memory:" in db_url:
            return None
        return repr(
            dataclasses.replace(settings, database=dataclasses.replace(settings.database, url=""))
        )

    def copy_to(self, key: str, db_url: str) -> bool:
        kept = self._kept.get(key)
        target = Path(db_url.removeprefix("sqlite:///"))
        if kept is None or target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept[0], target)
        return True

    def restore(self, key: str, site: Site) -> None:
        _, numbers, attachment_id, baseline = self._kept[key]
        site.numbers = dict(numbers)
        site.attachment_id, site.notice_baseline = attachment_id, baseline

    def keep(self, key: str, site: Site, db_url: str) -> None:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="mailgate-seeded-"))
            atexit.register(shutil.rmtree, self._folder, ignore_errors=True)
        copy = self._folder / f"{len(self._kept)}.db"
        # SQLite's online backup: one consistent file, whatever is still in the WAL.
        source = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        with closing(source), closing(sqlite3.connect(copy)) as target:
            source.backup(target)
        self._kept[key] = (copy, dict(site.numbers), site.attachment_id, site.notice_baseline)


_SEEDED = _SeededCopies()


def _seed(site: Site) -> None:
    site.numbers["carol"] = site.ingest(
        build(
            sender="Carol <carol@acme.test>",
            subject="Printer on fire",
            body="The printer in room 4 is on fire.\n",
            html="<p>The printer in <b>room 4</b> is on fire.</p>",
            attachments=[("report ü.pdf", "application/pdf", PDF)],
        )
    )
    site.numbers["dave"] = site.ingest(
        build(sender="Dave <dave@acme.test>", subject="VPN is down", body="No VPN since 9am.\n")
    )
    site.numbers["eve"] = site.ingest(
        build(sender="Eve <eve@globex.test>", subject="Invoice wrong", body="Invoice 7 is off.\n")
    )
    set_agent_passwords(site)
    with site.store.transaction() as session:
        messages.note(
            session,
            settings=site.settings,
            number=site.numbers["carol"],
            actor=Actor("ann@example.com", "ann@example.com", "Ann"),
            body=site.note_text,
            at=site.clock(),
        )
    detail = _show(site, site.numbers["carol"])
    site.attachment_id = detail["messages"][0]["attachments"][0]["id"]


def set_agent_passwords(site: Site) -> None:
    """Ann's and Bob's portal passwords (``sign_in_agent`` knows them)."""
    with site.store.transaction() as session:
        for email, digest in _password_hashes().items():
            agent_id = session.scalar(select(Agent.id).where(Agent.email == email))
            assert agent_id is not None
            session.add(
                AgentPassword(agent_id=agent_id, password_hash=digest, updated_at=site.clock())
            )


@cache
def _password_hashes() -> dict[str, str]:
    """Real argon2id hashes at the suite's cheap parameters (conftest.QUICK_HASHER)."""
    return {
        "ann@example.com": QUICK_HASHER.hash(ANN_PASSWORD),
        "bob@example.com": QUICK_HASHER.hash(ANN_PASSWORD + "!"),
    }


def _show(site: Site, number: int) -> dict[str, Any]:
    from mailgate.db import queries

    with site.store.transaction() as session:
        return queries.show_ticket(session, number)


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_from(client: TestClient, path: str = "/sign-in") -> str:
    """The form token, read from a page as a browser would."""
    page = client.get(path, follow_redirects=True)
    match = _CSRF.search(page.text)
    assert match, f"no csrf field on {path}: {page.status_code}"
    return match.group(1)


def sign_in_link(site: Site, email: str) -> str:
    """The path of the newest sign-in link mailed to ``email``."""
    with site.store.transaction() as session:
        notice = session.scalars(
            select(Notice)
            .where(Notice.kind == "sign_in_link", Notice.recipient == email)
            .order_by(Notice.id.desc())
        ).first()
        assert notice is not None, f"no sign-in notice for {email}"
        url = signin.link_for_notice(session, site.settings, notice)
    assert url is not None and url.startswith(site.settings.web.base_url)
    return url.removeprefix(site.settings.web.base_url)


def sign_in_customer(site: Site, email: str) -> TestClient:
    """A browser signed in as customer ``email`` the way a person does it."""
    client = site.client()
    token = csrf_from(client)
    sent = client.post("/sign-in", data={"email": email, "csrf": token})
    assert sent.status_code == 200, sent.text
    path = sign_in_link(site, email)
    token = csrf_from(client, path)
    done = client.post(path, data={"csrf": token})
    assert done.status_code == 303, done.text
    return client


def sign_in_agent(site: Site, email: str = "ann@example.com") -> TestClient:
    client = site.client()
    token = csrf_from(client, "/agent/sign-in")
    password = ANN_PASSWORD if email == "ann@example.com" else ANN_PASSWORD + "!"
    done = client.post("/agent/sign-in", data={"email": email, "password": password, "csrf": token})
    assert done.status_code == 303, done.text
    return client


def form(client: TestClient, path: str, page: str, **fields: str) -> Any:
    """Post a form with the token a browser would have from ``page``."""
    return client.post(path, data={"csrf": csrf_from(client, page), **fields})
