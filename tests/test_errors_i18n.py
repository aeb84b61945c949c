"""Errors a portal page shows are translatable: a msgid template plus named values.

``str()`` stays the English text the CLI and the JSON API print; ``translated()`` puts
the same values into the reader's language. Every ``InvalidValue``/``ActionRefused`` in
the package is built from a literal template, so pybabel extracts it.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from mailgate.core.errors import ActionRefused, InvalidValue, MailgateError, NotFound
from mailgate.tickets.records import CLOSED_EXPLANATION, closed_refusal
from mailgate.web import api_tokens, pages
from tests.web_support import form, make_site, sign_in_agent

PACKAGE = Path(__file__).resolve().parents[1] / "mailgate"
KEYWORDS = {"InvalidValue", "ActionRefused"}  # pybabel's -k (web/i18n.py says the command)

FRENCH = {
    "no team %(team)r": "aucune équipe %(team)r",
    "the message is longer than %(max)s characters": ("le message dépasse %(max)s caractères"),
    "a ticket cannot be linked to itself": "un ticket ne peut pas être lié à lui-même",
    "There is no canned response %(name)r any more.": "La réponse type %(name)r n'existe plus.",
    "Back to ticket #%(number)s": "Retour au ticket n° %(number)s",
}


def fake_gettext(message: str) -> str:
    return FRENCH.get(message, message)


def test_str_is_the_english_text_unchanged() -> None:
    assert str(InvalidValue("no team %(team)r", team="Sales")) == "no team 'Sales'"
    assert (
        str(InvalidValue("the message is longer than %(max)s characters", max=100_000))
        == "the message is longer than 100000 characters"
    )
    refused = ActionRefused(
        "ticket #%(number)s is %(status)s: a ticket is merged into an open "
        "one (a closed ticket never changes)",
        number=7,
        status="closed",
    )
    assert str(refused) == (
        "ticket #7 is closed: a ticket is merged into an open one (a closed ticket never changes)"
    )
    # A value with a % in it is a value, not a placeholder.
    assert str(InvalidValue("no team %(team)r", team="50%")) == "no team '50%'"


def test_translated_uses_the_gettext_given() -> None:
    exc = InvalidValue("no team %(team)r", team="Ventes")
    assert exc.translated(fake_gettext) == "aucune équipe 'Ventes'"
    assert str(exc) == "no team 'Ventes'"  # unchanged by translating
    plain = InvalidValue("a ticket cannot be linked to itself")
    assert plain.translated(fake_gettext) == "un ticket ne peut pas être lié à lui-même"
    # Without a catalog entry: the English words.
    other = ActionRefused("ticket #%(number)s cannot be merged into itself", number=3)
    assert other.translated(fake_gettext) == "ticket #3 cannot be merged into itself"


def test_an_old_style_message_without_params_still_works() -> None:
    number = 5
    exc = NotFound(f"no ticket #{number} (100% gone)")  # a % with no params is no placeholder
    assert str(exc) == "no ticket #5 (100% gone)"
    assert exc.template == "no ticket #5 (100% gone)" and exc.params == {}
    assert exc.translated(fake_gettext) == "no ticket #5 (100% gone)"
    assert str(MailgateError()) == ""
    with pytest.raises(InvalidValue, match=r"^no team 'x'$"):
        raise InvalidValue("no team %(team)r", team="x")


def test_an_error_survives_pickling_with_its_template() -> None:
    again = pickle.loads(pickle.dumps(InvalidValue("no team %(team)r", team="Sales")))  # noqa: S301
    assert str(again) == "no team 'Sales'"
    assert again.translated(fake_gettext) == "aucune équipe 'Sales'"


def test_the_closed_refusal_ends_with_the_explanation_shown_alone() -> None:
    """``closed_refusal`` spells ``CLOSED_EXPLANATION`` out (one msgid): the same words."""

    class Closed:
        number = 12
        status = "closed"

    text = str(closed_refusal(Closed()))  # type: ignore[arg-type]
    assert text == f"ticket #12 is closed. {CLOSED_EXPLANATION}"


def _calls_without_a_literal_template(package: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name not in KEYWORDS:
                continue
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                where = path.relative_to(package.parent)
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_every_refusal_is_built_from_a_literal_template() -> None:
    """No f-string, no variable: pybabel extracts only literals, and a message put
    together in code cannot be translated. Values go in as named params."""
    assert _calls_without_a_literal_template() == []


def test_the_check_sees_an_f_string_and_a_variable(tmp_path: Path) -> None:
    package = tmp_path / "mailgate"
    package.mkdir()
    (package / "bad.py").write_text(
        'raise InvalidValue(f"no team {name!r}")\n'
        "raise errors.ActionRefused(WORDS)\n"
        'raise InvalidValue("no team %(team)r", team=name)\n'
    )
    found = _calls_without_a_literal_template(package)
    assert [line.split(":")[1] for line in found] == ["1", "2"]


def test_a_page_shows_an_error_escaped_and_in_the_readers_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The portal translates the error; what someone typed in it stays text (HTML and
    ``%`` alike, although the page's ``_()`` takes its argument as markup and formats it);
    the API says the English words."""
    site = make_site(f"sqlite:///{tmp_path / 'm.db'}")
    agent = sign_in_agent(site)
    typed = "<b>50% off</b>"
    page = agent.get("/agent", params={"team": typed})
    assert page.status_code == 400
    assert "no team &#39;&lt;b&gt;50% off&lt;/b&gt;&#39;" in page.text
    assert "<b>50%" not in page.text
    monkeypatch.setattr(pages, "gettext", lambda request: fake_gettext)
    french = agent.get("/agent", params={"team": typed})
    assert "aucune équipe &#39;&lt;b&gt;50% off&lt;/b&gt;&#39;" in french.text
    n = site.numbers["carol"]
    gone = form(agent, f"/agent/tickets/{n}/reply", f"/tickets/{n}", body="", response="x%s")
    assert gone.status_code == 400
    assert "La réponse type &#39;x%s&#39; n&#39;existe plus." in gone.text
    assert f">Retour au ticket n° {n}</a>" in gone.text
    with site.store.transaction() as session:
        token = api_tokens.add(session, "crm", site.clock())
    api = site.client().get(
        "/api/tickets", params={"team": typed}, headers={"Authorization": f"Bearer {token}"}
    )
    assert api.status_code == 400 and api.json()["detail"] == f"no team {typed!r}"
