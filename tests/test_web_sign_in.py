"""The customer portal's sign-in by emailed link, sign-out and start pages."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from mailgate.db.models import SignInToken
from tests.web_support import (
    Site,
    csrf_from,
    make_site,
    sign_in_customer,
    sign_in_link,
)


def _ask_for_link(site: Site, email: str, client=None):  # type: ignore[no-untyped-def]
    client = client or site.client()
    return client, client.post("/sign-in", data={"email": email, "csrf": csrf_from(client)})


def test_sign_in_link_is_a_content_free_notice_and_stored_hashed(site: Site) -> None:
    """Asking for a link writes one sign_in_link notice (no ticket) and only the token's hash."""
    _, answer = _ask_for_link(site, "Carol@Acme.test")
    assert answer.status_code == 200 and "Check your mail" in answer.text
    [notice] = site.notices("sign_in_link")
    assert (notice.recipient, notice.ticket_id, notice.state) == (
        "carol@acme.test",
        None,
        "pending",
    )
    path = sign_in_link(site, "carol@acme.test")
    token = path.removeprefix("/sign-in/")
    with site.store.transaction() as session:
        row = session.scalars(select(SignInToken)).one()
        stored = [str(v) for v in (row.token_hash, row.salt, row.next_path, row.email)]
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in value for value in stored)
    assert token not in f"{notice.cause} {notice.message_id} {notice.in_reply_to}"


def test_sign_in_link_works_once_and_a_get_does_not_spend_it(site: Site) -> None:
    """Opening the link shows a button (mail scanners fetch links); the post signs in, once."""
    client, _ = _ask_for_link(site, "carol@acme.test")
    path = sign_in_link(site, "carol@acme.test")
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 200
    before = client.cookies["mailgate_session"]
    done = client.post(path, data={"csrf": csrf_from(client, path)})
    assert done.status_code == 303 and done.headers["location"] == "/tickets"
    assert client.cookies["mailgate_session"] != before  # a new session id at sign-in
    assert "Printer on fire" in client.get("/tickets").text
    again = site.client()
    assert again.get(path).status_code == 410
    assert again.post(path, data={"csrf": csrf_from(again)}).status_code == 410


def test_sign_in_link_expires(site: Site) -> None:
    """After web.sign_in_link_minutes the link no longer works."""
    client, _ = _ask_for_link(site, "carol@acme.test")
    path = sign_in_link(site, "carol@acme.test")
    site.clock.advance(minutes=site.settings.web.sign_in_link_minutes, seconds=1)
    page = client.get(path)
    assert page.status_code == 410 and "Send me a new link" in page.text


def test_forged_or_altered_token_is_refused(site: Site) -> None:
    """A token with one character changed, or made up, signs nobody in."""
    client, _ = _ask_for_link(site, "carol@acme.test")
    path = sign_in_link(site, "carol@acme.test")
    altered = path[:-1] + ("A" if path[-1] != "A" else "B")
    for bad in (altered, "/sign-in/1-" + "x" * 43, "/sign-in/nonsense"):
        assert client.get(bad).status_code == 410


def test_unknown_address_gets_the_same_answer_and_no_mail(tmp_path: Path) -> None:
    """Under intake.policy = known, a stranger sees the same page, and no notice is written."""
    import dataclasses

    site = make_site(f"sqlite:///{tmp_path / 'm.db'}")
    site.settings = dataclasses.replace(
        site.settings, intake=dataclasses.replace(site.settings.intake, policy="known")
    )
    from mailgate.web.app import create_app

    site.app = create_app(site.settings, site.store, now=site.clock)
    _, stranger = _ask_for_link(site, "nobody@elsewhere.test")
    _, known = _ask_for_link(site, "newperson@acme.test")
    assert stranger.status_code == known.status_code == 200
    assert stranger.text.replace("nobody@elsewhere.test", "X") == known.text.replace(
        "newperson@acme.test", "X"
    )
    assert [n.recipient for n in site.notices("sign_in_link")] == ["newperson@acme.test"]
    site.store.engine.dispose()


def test_sign_in_requests_are_rate_limited_per_address(tmp_path: Path) -> None:
    """More link requests for one address than the hourly limit get 429 until the hour passes."""
    site = make_site(f"sqlite:///{tmp_path / 'm.db'}", sign_in_requests_per_address_per_hour=2)
    client = site.client()
    codes = [_ask_for_link(site, "carol@acme.test", client)[1].status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert len(site.notices("sign_in_link")) == 2
    assert _ask_for_link(site, "dave@acme.test", client)[1].status_code == 200
    site.clock.advance(hours=1, seconds=1)
    assert _ask_for_link(site, "carol@acme.test", client)[1].status_code == 200
    site.store.engine.dispose()


def test_sign_in_requests_are_rate_limited_per_client_address(tmp_path: Path) -> None:
    """Link requests are limited per client address, the forwarded one behind a trusted proxy."""
    site = make_site(
        f"sqlite:///{tmp_path / 'm.db'}",
        sign_in_requests_per_ip_per_hour=2,
        client_ip_header="X-Forwarded-For",
        trusted_proxies=("testclient",),
    )
    client = site.client()
    token = csrf_from(client)

    def ask(email: str, ip: str) -> int:
        headers = {"X-Forwarded-For": f"203.0.113.9, {ip}"}
        data = {"email": email, "csrf": token}
        return client.post("/sign-in", data=data, headers=headers).status_code

    assert [ask(f"u{i}@acme.test", "198.51.100.1") for i in range(3)] == [200, 200, 429]
    assert ask("u9@acme.test", "198.51.100.2") == 200
    site.store.engine.dispose()


def test_sign_in_returns_to_the_page_asked_for_and_never_off_site(site: Site) -> None:
    """Sign-in returns to the ticket asked for; a next pointing off site is dropped."""
    client = site.client()
    first = client.get(f"/tickets/{site.numbers['carol']}")
    assert first.status_code == 303
    assert first.headers["location"] == f"/sign-in?next=%2Ftickets%2F{site.numbers['carol']}"
    page = client.get(first.headers["location"])
    assert f'value="/tickets/{site.numbers["carol"]}"' in page.text
    token = csrf_from(client)
    client.post(
        "/sign-in",
        data={
            "email": "carol@acme.test",
            "csrf": token,
            "next": f"/tickets/{site.numbers['carol']}",
        },
    )
    path = sign_in_link(site, "carol@acme.test")
    done = client.post(path, data={"csrf": csrf_from(client, path)})
    assert done.headers["location"] == f"/tickets/{site.numbers['carol']}"
    evil = site.client()
    evil.post(
        "/sign-in",
        data={"email": "dave@acme.test", "csrf": csrf_from(evil), "next": "//evil.test/x"},
    )
    path = sign_in_link(site, "dave@acme.test")
    assert evil.post(path, data={"csrf": csrf_from(evil, path)}).headers["location"] == "/tickets"


def test_sign_out_ends_the_session(site: Site) -> None:
    """After sign-out the old session id no longer opens anything."""
    client = sign_in_customer(site, "carol@acme.test")
    old = client.cookies["mailgate_session"]
    out = client.post("/sign-out", data={"csrf": csrf_from(client, "/tickets")})
    assert out.status_code == 303 and client.cookies["mailgate_session"] != old
    stale = site.client()
    stale.cookies.set("mailgate_session", old)
    assert stale.get("/tickets").status_code == 303


def test_home_sends_each_visitor_to_their_start_page(site: Site) -> None:
    """/ goes to sign-in when signed out, to the ticket list for customers, the queue for agents."""
    from tests.web_support import sign_in_agent

    assert site.client().get("/").headers["location"] == "/sign-in"
    assert sign_in_customer(site, "carol@acme.test").get("/").headers["location"] == "/tickets"
    agent = sign_in_agent(site)
    assert agent.get("/").headers["location"] == "/agent"
    assert agent.get("/tickets").headers["location"] == "/agent"
