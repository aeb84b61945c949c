"""The portal in English, French and Spanish: complete catalogs, the language a request
gets (switcher, account, browser, default) and pages in that language."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from mailgate.core.settings import DefaultsSettings, Settings
from mailgate.db.models import Customer
from mailgate.web import catalogs, i18n
from mailgate.web.pages import _when
from tests.web_support import make_site, sign_in_agent, sign_in_customer


@pytest.mark.parametrize("language", ["fr", "es"])
def test_every_string_of_the_portal_is_translated(language: str) -> None:
    """A string added to a page or a shown error without its translation fails here;
    `python3 -m mailgate.web.catalogs` merges new strings in and lists them."""
    left = catalogs.check([language])[language]
    assert not left, f"{language}: {len(left)} strings lack a translation:\n" + "\n".join(left)


def test_the_check_names_a_missing_string(tmp_path: Path) -> None:
    """The check above can fail: a catalog without one msgid is reported."""
    template = catalogs.extract()
    catalog = catalogs.load("fr")
    some = next(m for m in template if m.id)
    del catalog[some.id]
    assert some.id in catalogs.untranslated(catalog, template)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("de-DE,de;q=0.9,es;q=0.5", "es"),
        ("es;q=0.1, fr;q=0.2", "fr"),
        ("en-GB", "en"),
        ("de", None),
        ("", None),
        ("fr;q=abc, es", "es"),
    ],
)
def test_accept_language(header: str, expected: str | None) -> None:
    assert i18n.from_accept_language(header) == expected


def test_dates_are_written_the_readers_way() -> None:
    at = datetime(2026, 12, 6, 8, 19, tzinfo=UTC)
    assert _when(at, "en") == "Dec 6, 2026, 8:19\u202fAM UTC"
    assert _when(at, "fr") == "6 déc. 2026, 08:19 UTC"
    assert _when(at.isoformat(), "es") == "6 dic 2026, 8:19 UTC"


def _french_default(settings: Settings) -> Settings:
    return dataclasses.replace(settings, defaults=DefaultsSettings(language="fr"))


def test_the_browser_language_then_the_default(tmp_path: Path) -> None:
    site = make_site(f"sqlite:///{tmp_path / 'm.db'}", seed=False, adjust=_french_default)
    client = site.client()
    page = client.get("/sign-in", headers={"Accept-Language": "es-ES,es;q=0.9"})
    assert '<html lang="es">' in page.text and "Correo electrónico" in page.text
    page = client.get("/sign-in", headers={"Accept-Language": "de"})
    assert '<html lang="fr">' in page.text and "Adresse e-mail" in page.text
    assert "Email address" not in page.text


def test_the_switcher_remembers_a_choice_over_the_browser(tmp_path: Path) -> None:
    site = make_site(f"sqlite:///{tmp_path / 'm.db'}", seed=False)
    client = site.client()
    french = {"Accept-Language": "fr"}
    page = client.get("/sign-in", headers=french)
    assert 'href="/language/es?next=/sign-in"' in page.text  # the footer's switcher
    chosen = client.get("/language/es?next=/sign-in", follow_redirects=False)
    assert chosen.status_code == 303 and chosen.headers["location"] == "/sign-in"
    assert "HttpOnly" in chosen.headers["set-cookie"]
    page = client.get("/sign-in", headers=french)
    assert '<html lang="es">' in page.text
    # Back to the same view: a queue's filters kept, an action's confirmation not again.
    page = client.get("/sign-in?next=/tickets/7&done=reply")
    assert 'href="/language/fr?next=/sign-in%3Fnext%3D/tickets/7"' in page.text
    # Not a way to send people elsewhere, and only the three languages.
    away = client.get("/language/fr?next=//evil.test/x", follow_redirects=False)
    assert away.headers["location"] == "/"
    assert client.get("/language/de", follow_redirects=False).status_code == 404


def test_a_customer_account_language(tmp_path: Path) -> None:
    site = make_site(f"sqlite:///{tmp_path / 'm.db'}")
    with site.store.transaction() as session:
        session.execute(update(Customer).where(Customer.name == "Acme").values(language="fr"))
    client = sign_in_customer(site, "carol@acme.test")
    page = client.get(f"/tickets/{site.numbers['carol']}", headers={"Accept-Language": "es"})
    assert '<html lang="fr">' in page.text
    assert "Envoyer la réponse" in page.text
    # An agent has no account: the browser's language.
    agent = sign_in_agent(site)
    page = agent.get("/agent", headers={"Accept-Language": "es"})
    assert '<html lang="es">' in page.text and "Cola" in page.text


@pytest.mark.parametrize("language", ["fr", "es"])
def test_every_page_reads_in_the_language(tmp_path: Path, language: str) -> None:
    """No English sentence left on the main pages (the words common to all three, such as
    names, numbers and "Support", aside)."""
    site = make_site(f"sqlite:///{tmp_path / 'm.db'}")
    header = {"Accept-Language": language}
    agent = sign_in_agent(site)
    number = site.numbers["carol"]
    english = ("Queue", "Status", "Reply", "Subject", "Sign out", "History", "No tickets")
    for path in ("/agent", f"/tickets/{number}", "/agent/todos", "/agent/new", "/agent/reports"):
        page = agent.get(path, headers=header)
        assert page.status_code == 200, path
        assert f'<html lang="{language}">' in page.text
        for word in english:
            assert f">{word}<" not in page.text, (path, word)
    customer = sign_in_customer(site, "carol@acme.test")
    for path in ("/tickets", f"/tickets/{number}", "/tickets/new"):
        page = customer.get(path, headers=header)
        assert page.status_code == 200 and f'<html lang="{language}">' in page.text
        for word in english:
            assert f">{word}<" not in page.text, (path, word)
    missing = customer.get("/tickets/999999", headers=header)
    assert missing.status_code == 404 and f'<html lang="{language}">' in missing.text
    assert "There is no such ticket" not in missing.text
    # Starlette's own errors read in the language too, not as "Method Not Allowed".
    wrong = customer.put("/tickets", headers=header)
    assert wrong.status_code == 405 and f'<html lang="{language}">' in wrong.text
    assert "Method Not Allowed" not in wrong.text and "Not allowed" not in wrong.text
