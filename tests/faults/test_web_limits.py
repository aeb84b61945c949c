"""Rate limits that hold under parallel requests, and an agent no outsider can lock out.

Real parallel requests: one browser (TestClient) per thread, each with its own form token,
all released at once by a barrier, through the real app on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.web_support import ANN_PASSWORD, Site, csrf_from, make_site

pytestmark = pytest.mark.faults  # the security part of the fault suite (issue 19)

BEHIND_PROXY: dict[str, Any] = {
    "client_ip_header": "X-Forwarded-For",
    "trusted_proxies": ("testclient",),
}


@pytest.fixture
def make(db_url: str) -> Iterator[Callable[..., Site]]:
    made: list[Site] = []

    def build(**web: Any) -> Site:
        site = make_site(db_url, **BEHIND_PROXY, **web)
        made.append(site)
        return site

    yield build
    for site in made:
        site.store.engine.dispose()


def _in_parallel(site: Site, page: str, posts: list[tuple[str, dict[str, str]]]) -> list[Any]:
    """Each (client address, form) posted to ``page`` by its own browser, all at once."""
    browsers: list[tuple[TestClient, str]] = []
    for _ in posts:
        client = site.client()
        browsers.append((client, csrf_from(client, page)))
    barrier = threading.Barrier(len(posts))
    answers: list[Any] = [None] * len(posts)

    def run(i: int) -> None:
        client, token = browsers[i]
        address, data = posts[i]
        barrier.wait()
        answers[i] = client.post(
            page, data={**data, "csrf": token}, headers={"X-Forwarded-For": address}
        )

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(posts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(answer is not None for answer in answers)
    return answers


def _password(site: Site, address: str, password: str, email: str = "ann@example.com") -> Any:
    client = site.client()
    data = {"email": email, "password": password, "csrf": csrf_from(client, "/agent/sign-in")}
    return client.post("/agent/sign-in", data=data, headers={"X-Forwarded-For": address})


def _codes(answers: list[Any]) -> Counter[int]:
    return Counter(answer.status_code for answer in answers)


def test_parallel_sign_in_link_requests_send_exactly_the_limit(make: Callable[..., Site]) -> None:
    """40 link requests for one address at once mail exactly the limit of links; the rest
    are refused and not counted."""
    site = make(sign_in_requests_per_address_per_hour=5)
    posts = [("198.51.100.1", {"email": "carol@acme.test"})] * 40
    answers = _in_parallel(site, "/sign-in", posts)
    assert _codes(answers) == {200: 5, 429: 35}
    assert len(site.notices("sign_in_link")) == 5


def test_parallel_sign_in_link_requests_from_one_client_address(
    make: Callable[..., Site],
) -> None:
    """The per-client-address limit holds too: 30 addresses asked for at once from one client."""
    site = make(sign_in_requests_per_ip_per_hour=4)
    posts = [("198.51.100.1", {"email": f"u{i}@acme.test"}) for i in range(30)]
    assert _codes(_in_parallel(site, "/sign-in", posts)) == {200: 4, 429: 26}
    assert len(site.notices("sign_in_link")) == 4


def test_parallel_wrong_passwords_get_at_most_the_limit_of_checks(
    make: Callable[..., Site],
) -> None:
    """60 wrong passwords at once from one client address: exactly the limit are checked
    (401), every other one is refused (429) before its password is looked at."""
    site = make(password_failures_per_ip_per_hour=10, password_failures_per_address_per_hour=100)
    form = {"email": "ann@example.com", "password": "wrong guess 1"}
    answers = _in_parallel(site, "/agent/sign-in", [("198.51.100.66", form)] * 60)
    assert _codes(answers) == {401: 10, 429: 50}
    refused = next(a for a in answers if a.status_code == 429)
    assert "from your address" in refused.text and int(refused.headers["Retry-After"]) > 3000


def test_parallel_wrong_passwords_from_many_addresses_are_slowed_per_account(
    make: Callable[..., Site],
) -> None:
    """An account past its free failures lets one failing client at a time have a check:
    12 guesses at once from 12 addresses that have failed before get one check."""
    site = make(password_failures_per_address_per_hour=3)
    addresses = [f"198.51.100.{i}" for i in range(1, 13)]
    for address in addresses:  # each address has a failure of its own (on another account)
        assert _password(site, address, "wrong", "bob@example.com").status_code == 401
    for _ in range(3):
        assert _password(site, "192.0.2.1", "wrong").status_code == 401
    site.clock.advance(seconds=1)  # the 1 s the third failure asks for
    forms = [(a, {"email": "ann@example.com", "password": "wrong"}) for a in addresses]
    answers = _in_parallel(site, "/agent/sign-in", forms)
    assert _codes(answers) == {401: 1, 429: 11}
    refused = next(a for a in answers if a.status_code == 429)
    assert "for this account" in refused.text and refused.headers["Retry-After"] == "2"


def test_an_outsider_cannot_lock_the_agent_out(make: Callable[..., Site]) -> None:
    """An attacker drives its address over its limit and the account far past its free
    failures, and keeps hammering; the agent, from their own address and with the right
    password, signs in at the same moment."""
    site = make(password_failures_per_ip_per_hour=3, password_failures_per_address_per_hour=3)
    attack = [("203.0.113.66", {"email": "ann@example.com", "password": "guess"})] * 12
    assert _codes(_in_parallel(site, "/agent/sign-in", attack)) == {401: 3, 429: 9}
    refused = _password(site, "203.0.113.66", ANN_PASSWORD)
    assert refused.status_code == 429 and "from your address" in refused.text

    agent = ("198.51.100.7", {"email": "ann@example.com", "password": ANN_PASSWORD})
    answers = _in_parallel(site, "/agent/sign-in", [agent, *attack])
    assert answers[0].status_code == 303 and answers[0].headers["location"] == "/agent"
    assert _codes(answers[1:]) == {429: 12}
    # Signed in for real; and a right password was no failure: the address stays clean.
    assert _password(site, "198.51.100.7", ANN_PASSWORD).status_code == 303


def test_an_account_is_slowed_down_never_locked(make: Callable[..., Site]) -> None:
    """Past its free failures an account makes a failing client wait 1 s, 2 s, 4 s ... up
    to web.password_delay_max_seconds, then checks again; an hour-long lock never comes."""
    site = make(password_failures_per_address_per_hour=3, password_delay_max_seconds=8)
    address = "198.51.100.9"
    for _ in range(3):
        assert _password(site, address, "wrong").status_code == 401
    waits = []
    for _ in range(6):
        early = _password(site, address, ANN_PASSWORD)
        assert early.status_code == 429 and "for this account" in early.text
        waits.append(int(early.headers["Retry-After"]))
        site.clock.advance(seconds=waits[-1])
        assert _password(site, address, "wrong").status_code == 401
    assert waits == [1, 2, 4, 8, 8, 8]
    assert _password(site, address, ANN_PASSWORD).status_code == 429
    site.clock.advance(seconds=8)
    assert _password(site, address, ANN_PASSWORD).status_code == 303
