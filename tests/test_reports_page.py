"""The agents' Reports page (issue 22, item 7): the period's figures, the per-day
series as a server-drawn chart and a table, the breakdowns and the time logged; agents
only. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.web_support import Site, make_site, sign_in_agent, sign_in_customer


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url)
    yield s
    s.store.engine.dispose()


def test_reports_show_the_period(site: Site) -> None:
    client = sign_in_agent(site)
    page = client.get("/agent/reports?days=7")
    assert page.status_code == 200
    html = page.text
    assert "Opened in the period: <strong>3</strong>" in html
    assert '<svg class="chart"' in html and "<script" not in html
    day = site.clock().date().isoformat()
    assert f"<title>{day}: 3 opened</title>" in html
    assert "<td>Acme</td><td>2</td><td>2</td>" in html  # open now, opened in the period
    assert 'href="/agent/reports"' in client.get("/agent").text
    assert client.get("/agent/reports?days=0").status_code == 400  # the portal says why


def test_reports_are_for_agents_only(site: Site) -> None:
    customer = sign_in_customer(site, "carol@acme.test")
    assert customer.get("/agent/reports").status_code in (303, 403)
    assert site.client().get("/agent/reports").status_code in (303, 401, 403)


def test_reports_narrow_to_a_team_or_a_customer_account(site: Site) -> None:
    client = sign_in_agent(site)
    globex = client.get("/agent/reports?days=7&customer=Globex")
    assert globex.status_code == 200
    assert "Opened in the period: <strong>1</strong>" in globex.text
    assert "customer account <strong>Globex</strong>" in globex.text
    assert '<option value="Globex" selected>' in globex.text
    acme = client.get("/agent/reports?days=7&customer=Acme&team=support")
    assert "Opened in the period: <strong>2</strong>" in acme.text
    billing = client.get("/agent/reports?days=7&team=billing")
    assert "Open now: <strong>0</strong>" in billing.text
    unknown = client.get("/agent/reports?team=nosuch")
    assert unknown.status_code == 400 and "no team &#39;nosuch&#39;" in unknown.text
