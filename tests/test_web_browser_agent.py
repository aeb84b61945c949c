"""A real browser, an agent's day: every action on the ticket page, each confirmed on the
page it lands on; the confirm step before closing and the closed page worded for agents;
then the same portal in French and Spanish through the footer's switcher (issue 21).
Screenshots land in tests/artifacts/screens."""

from __future__ import annotations

import json
from pathlib import Path

from tests.browser import Chromium, listening_socket, serving
from tests.test_web_browser import ARTIFACTS, chromium_binary  # noqa: F401 - a fixture
from tests.test_web_phones import Checker, axe_source  # noqa: F401 - a fixture
from tests.web_support import ANN_PASSWORD, make_site

SCREENS = ARTIFACTS / "screens"


def _fill(selector: str, value: str) -> str:
    return f"document.querySelector({selector!r}).value = {value!r};"


def _press(form: str) -> str:
    return f"document.querySelector(\"form[action$='/{form}'] button[type=submit]\").click()"


# Each action of the agent's ticket page: what a person fills in, the form it submits
# and the words the next page greets them with (web/pages.DONE).
ACTIONS = [
    ("reply", _fill("#reply", "We are on it."), "Reply sent."),
    ("note", _fill("#note", "Called Carol."), "Note added."),
    ("status", _fill("#status", "Waiting"), "Status changed."),
    ("assign", _fill("#assignee", "bob@example.com"), "Assignee changed."),
    ("team", _fill("#team", "billing"), "Team changed."),
    ("priority", _fill("#priority", "High"), "Priority changed."),
    ("type", _fill("#type", "Technical"), "Type changed."),
    ("tags", _fill("#add_tags", "printer, fire"), "Tags updated."),
    ("helpers", _fill("#add_helper", "ann@example.com"), "Helpers updated."),
    ("departments", _fill("#add_department", "support"), "Departments updated."),
    ("dates", _fill("#follow_up", "2d"), "Dates set."),
    ("link", _fill("#other", "{dave}"), "Tickets linked."),
    ("activity", _fill("#activity-minutes", "15"), "Time logged."),
    ("todos", _fill("#todo-title", "Order toner"), "To-do added."),
]


def test_an_agent_sees_each_action_confirmed_in_three_languages(
    chromium_binary: str,  # noqa: F811 - the fixture imported above
    axe_source: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    site = make_site(f"sqlite:///{tmp_path / 'mailgate.db'}", base_url=base)
    number, dave = site.numbers["carol"], site.numbers["dave"]
    seen: dict[str, str] = {}
    browser = None
    try:
        with serving(site.app, sock):
            browser = Chromium(chromium_binary, tmp_path / "profile", tmp_path / "chromium.log")
            browser.open_page(1280, 800)
            browser.goto(f"{base}/agent/sign-in")
            browser.submit(
                _fill("#email", "ann@example.com")
                + _fill("#password", ANN_PASSWORD)
                + "document.querySelector(\"form[action='/agent/sign-in'] button\").click()"
            )
            ticket = f"{base}/tickets/{number}"
            for form, fill, _ in ACTIONS:
                browser.goto(ticket)
                browser.submit(fill.replace("{dave}", str(dave)) + _press(form))
                seen[form] = str(browser.run("document.querySelector('.done')?.innerText"))
                assert browser.run("location.pathname") == f"/tickets/{number}", form
            browser.screenshot(SCREENS / "agent-after-actions-1280.png")
            page = browser.text()
            assert "We are on it." in page and "Called Carol." in page and "Order toner" in page

            # Close asks first; the page after it speaks to agents, not to the customer.
            browser.goto(ticket)
            browser.submit(_press("close"))
            assert "Closing is final" in browser.text()
            assert browser.run("location.pathname") == f"/agent/tickets/{number}/close"
            browser.submit(_press("close"))
            seen["close"] = str(browser.run("document.querySelector('.done')?.innerText"))
            closed = browser.text()
            assert "Internal notes and links can still be added" in closed
            assert "Please open a new ticket" not in closed

            # The footer's switcher, as a person uses it: the choice sticks across pages.
            browser.submit("document.querySelector('footer a[hreflang=fr]').click()")
            assert browser.run("document.documentElement.lang") == "fr"
            assert browser.run("location.pathname") == f"/tickets/{number}"
            french = browser.text()
            assert "Ce ticket est fermé" in french and "Historique" in french
            browser.goto(f"{base}/tickets/{dave}")
            browser.submit(_fill("#note", "Vu.") + _press("note"))
            seen["note (fr)"] = str(browser.run("document.querySelector('.done')?.innerText"))
            check = Checker(browser, axe_source)
            check("agent-ticket-fr", expect="Ajouter la note")
            browser.goto(f"{base}/agent")
            check("agent-queue-fr", expect="File d'attente")
            browser.submit("document.querySelector('footer a[hreflang=es]').click()")
            assert browser.run("document.documentElement.lang") == "es"
            check("agent-queue-es", expect="Cola")
            browser.goto(f"{base}/tickets/{dave}")
            check("agent-ticket-es", expect="Historial")
            browser.goto(f"{base}/agent/reports")
            check("agent-reports-es", expect="Informes")
    finally:
        if browser is not None:
            browser.close()
        site.store.engine.dispose()
    (ARTIFACTS / "agent-confirmations.json").write_text(json.dumps(seen, indent=1), "utf-8")
    expected = {form: words for form, _, words in ACTIONS}
    expected |= {"close": "Ticket closed.", "note (fr)": "Note ajoutée."}
    assert seen == expected
    assert not check.problems, "\n".join(check.problems) + f"\nscreenshots in {SCREENS}"
