"""/metrics and /healthz over the real app, after real mail went through the real pipeline."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from mailgate.core.settings import Settings, SlaSettings
from mailgate.core.validation import validate
from mailgate.db.models import ImapCursor
from mailgate.inbound.handoff import process_and_send
from mailgate.inbound.intake import Envelope, accept
from mailgate.tickets.sla_check import run_check
from mailgate.web.app import create_app
from tests.mail import build
from tests.ports import free_port
from tests.web_support import Site, make_site

LOCAL = ("127.0.0.1", 40000)


def _site(tmp_path: Path, **web: Any) -> Site:
    site = make_site(f"sqlite:///{tmp_path / 'mailgate.db'}", seed=False, **web)
    outbound = dataclasses.replace(site.settings.outbound, folder=str(tmp_path / "outbox"))
    site.settings = dataclasses.replace(site.settings, outbound=outbound)
    return site


def _feed(site: Site, raw: bytes, settings: Settings | None = None) -> None:
    accepted = accept(
        site.store, raw, source="ingest", envelope=Envelope(), max_bytes=10**7, now=site.clock
    )
    site.clock.advance(seconds=2)
    process_and_send(
        site.store, accepted.inbound_id, settings=settings or site.settings, now=site.clock
    )


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def site(tmp_path: Path) -> Any:
    s = _site(tmp_path)
    yield s
    s.store.engine.dispose()


def test_metrics_count_what_the_pipeline_did(site: Site, tmp_path: Path) -> None:
    """Three new tickets, one quarantined and one waiting message show up with their notices."""
    for i in range(3):
        _feed(site, build(sender=f"c{i}@customer.test", message_id=f"<m{i}@customer.test>"))
    tight = dataclasses.replace(
        site.settings, limits=dataclasses.replace(site.settings.limits, max_headers=3)
    )
    _feed(site, build(sender="q@customer.test", message_id="<q@customer.test>"), tight)
    accept(
        site.store,
        build(sender="w@customer.test", message_id="<w@customer.test>"),
        source="smtp",
        envelope=Envelope(),
        max_bytes=10**7,
        now=site.clock,
    )
    with site.store.transaction() as session:
        session.add(
            ImapCursor(
                mailbox="support",
                uidvalidity=1,
                last_uid=7,
                updated_at=site.clock() - timedelta(seconds=90),
            )
        )
    sent_files = list((tmp_path / "outbox").rglob("*.eml"))
    assert len(sent_files) == 3

    response = TestClient(site.app, client=LOCAL).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = _samples(response.text)

    def inbound(source: str, state: str, outcome: str) -> float:
        labels = (("outcome", outcome), ("source", source), ("state", state))
        return got[("mailgate_inbound_messages_total", labels)]

    assert inbound("ingest", "processed", "new_ticket") == 3
    assert inbound("ingest", "quarantined", "refused") == 1
    assert inbound("smtp", "received", "") == 1
    assert got[("mailgate_inbound_pending", ())] == 1
    assert got[("mailgate_notices_total", (("kind", "acknowledgement"), ("state", "sent")))] == 3
    assert not any(k[0] == "mailgate_notices_total" and ("state", "pending") in k[1] for k in got)
    assert got[("mailgate_processing_seconds_count", ())] == 4
    assert got[("mailgate_processing_seconds_sum", ())] == 8.0
    assert got[("mailgate_processing_seconds_bucket", (("le", "1.0"),))] == 0
    assert got[("mailgate_processing_seconds_bucket", (("le", "5.0"),))] == 4
    assert got[("mailgate_imap_seconds_since_poll", (("mailbox", "support"),))] == 90.0


def test_metrics_count_sla_breaches(site: Site) -> None:
    """mailgate_sla_breaches_total{kind} counts the recorded breaches, 0 before any."""
    got = _samples(TestClient(site.app, client=LOCAL).get("/metrics").text)
    assert got[("mailgate_sla_breaches_total", (("kind", "first_response"),))] == 0
    assert got[("mailgate_sla_breaches_total", (("kind", "resolution"),))] == 0
    for i in range(2):
        _feed(site, build(sender=f"c{i}@customer.test", message_id=f"<s{i}@customer.test>"))
    targets = SlaSettings(first_response_minutes={"Normal": 60}, resolution_minutes={"Normal": 90})
    settings = dataclasses.replace(site.settings, sla=targets)
    run_check(site.store, settings, site.clock() + timedelta(minutes=61))
    run_check(site.store, settings, site.clock() + timedelta(minutes=91))
    got = _samples(TestClient(site.app, client=LOCAL).get("/metrics").text)
    assert got[("mailgate_sla_breaches_total", (("kind", "first_response"),))] == 2
    assert got[("mailgate_sla_breaches_total", (("kind", "resolution"),))] == 2


def test_metrics_are_hidden_from_other_addresses(site: Site) -> None:
    """A client outside web.metrics_allow, or relayed by an unnamed proxy, gets a plain 404."""
    assert TestClient(site.app, client=("203.0.113.9", 40000)).get("/metrics").status_code == 404
    assert TestClient(site.app).get("/metrics").status_code == 404  # "testclient" is no address
    relayed = TestClient(site.app, client=LOCAL, headers={"X-Forwarded-For": "203.0.113.9"})
    assert relayed.get("/metrics").status_code == 404
    assert TestClient(site.app, client=("::1", 40000)).get("/metrics").status_code == 200


def test_metrics_allow_takes_networks(tmp_path: Path) -> None:
    """A network in web.metrics_allow admits its addresses; a bad entry fails validation."""
    site = _site(tmp_path, metrics_allow=("10.1.0.0/16",))
    try:
        assert TestClient(site.app, client=("10.1.2.3", 1)).get("/metrics").status_code == 200
        assert TestClient(site.app, client=LOCAL).get("/metrics").status_code == 404
    finally:
        site.store.engine.dispose()
    web = dataclasses.replace(site.settings.web, metrics_allow=("10.1.0.0/16", "localhost"))
    problems = validate(dataclasses.replace(site.settings, web=web), "x.toml", from_file=False)
    assert any("web.metrics_allow[1]" in p for p in problems)


def test_healthz_is_ok_with_the_embedded_queue(site: Site) -> None:
    """Database answering and the embedded broker: 200 with both parts ok."""
    response = TestClient(site.app).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


def test_healthz_names_an_unreachable_database(tmp_path: Path) -> None:
    """The database's directory gone: 503 naming the database, with no error details."""
    folder = tmp_path / "db"
    folder.mkdir()
    site = _site(folder)
    shutil.rmtree(folder)
    site.store.engine.dispose()
    response = TestClient(site.app).get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "unreachable", "broker": "ok"}
    assert str(folder) not in response.text


def test_healthz_names_an_unreachable_broker(site: Site) -> None:
    """A broker URL on a closed port: 503 naming the broker, its URL and password not shown."""
    port = free_port()  # nothing listens there; below the range clients' ports come from
    queue = dataclasses.replace(site.settings.queue, broker=f"redis://:hunter2@127.0.0.1:{port}/0")
    settings = dataclasses.replace(site.settings, queue=queue)
    app = create_app(settings, site.store, now=site.clock)
    response = TestClient(app).get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "unreachable"}
    assert "hunter2" not in response.text
