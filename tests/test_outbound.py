"""Templates, composed headers and the notices CLI."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result

from mailgate.core.notices import ANSWER_KINDS, KINDS
from mailgate.outbound.compose import Envelope, compose
from mailgate.outbound.render import SAMPLE, Renderer, check_templates
from mailgate.threading.tokens import read_message_id, read_reply_token
from tests.builders import build
from tests.conftest import SECRET

LANGUAGES = ("en", "fr", "es")
NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_template_renders_with_link_and_reference(kind: str, language: str) -> None:
    """Each kind in each language renders text and HTML with the portal link and [#123]."""
    rendered = Renderer().render(kind, language, SAMPLE)
    assert rendered.language == language
    assert rendered.subject.startswith("[#123] ") and "\n" not in rendered.subject
    for body in (rendered.text, rendered.html):
        assert SAMPLE.url in body and "[#123]" in body
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert f'lang="{language}"' in rendered.html


def test_templates_differ_by_language() -> None:
    """French and Spanish are translations, not copies of English."""
    subjects = {
        lang: Renderer().render("acknowledgement", lang, SAMPLE).subject for lang in LANGUAGES
    }
    assert len(set(subjects.values())) == 3


def test_unknown_language_falls_back_to_default() -> None:
    """A language without templates (or a malformed one) renders in the default."""
    renderer = Renderer(default_language="fr")
    assert renderer.render("acknowledgement", "de", SAMPLE).language == "fr"
    assert renderer.render("acknowledgement", "../en", SAMPLE).language == "fr"


def test_html_is_autoescaped(tmp_path: Path) -> None:
    """Values are escaped in HTML templates (defence in depth: they are system values)."""
    own = tmp_path / "tpl" / "en"
    own.mkdir(parents=True)
    (own / "assigned.html").write_text("<p>{{ status }}</p>")
    values = SAMPLE.__class__(**{**SAMPLE.__dict__, "status": "<b>x</b>"})
    rendered = Renderer(str(tmp_path / "tpl")).render("assigned", "en", values)
    assert rendered.html == "<p>&lt;b&gt;x&lt;/b&gt;</p>"


def test_operator_folder_overrides_per_file(tmp_path: Path) -> None:
    """A file in outbound.templates wins; every file missing there comes from the built-ins."""
    own = tmp_path / "en"
    own.mkdir()
    (own / "acknowledgement.subject").write_text("{{ tag }} Thanks from Acme\n")
    rendered = Renderer(str(tmp_path)).render("acknowledgement", "en", SAMPLE)
    assert rendered.subject == "[#123] Thanks from Acme"
    assert "We received your request" in rendered.text


def test_built_in_templates_check_clean() -> None:
    """The shipped templates pass the same check check-config runs."""
    assert check_templates() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ tag }", "en/acknowledgement.txt: line 1"),
        ("{{ customer_subject }}", "'customer_subject' is undefined"),
        ("{% extends 'en/nope.txt' %}", "nope.txt"),
    ],
)
def test_broken_template_fails_check_config(
    cli: Callable[..., Result], tmp_path: Path, text: str, expected: str
) -> None:
    """check-config renders every template and names a broken one with file and line."""
    own = tmp_path / "tpl" / "en"
    own.mkdir(parents=True)
    (own / "acknowledgement.txt").write_text(text)
    config = tmp_path / "mailgate.toml"  # written by the cli fixture
    with config.open("a") as fh:
        fh.write(f'[outbound]\ntemplates = "{tmp_path / "tpl"}"\n')
    result = cli("check-config")
    assert result.exit_code == 2, result.output
    assert "outbound.templates:" in result.output and expected in result.output


@pytest.mark.parametrize("kind", KINDS)
def test_composed_headers(kind: str) -> None:
    """Headers carry the loop defences, signed ids and threading to the customer's message."""
    rendered = Renderer().render(kind, "en", SAMPLE)
    envelope = Envelope(
        notice_id=9,
        kind=kind,
        recipient="alice@customer.test",
        ticket_number=123,
        message_id="mg.123.abcd.aaaaaaaaaaaaaaaa@example.com",
        in_reply_to="cafe@customer.test",
    )
    msg = compose(envelope, rendered, from_address="support@example.com", secret=SECRET, now=NOW)
    assert msg["Auto-Submitted"] == ("auto-replied" if kind in ANSWER_KINDS else "auto-generated")
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["X-Mailgate-Loop"] == "support@example.com"
    assert msg["In-Reply-To"] == msg["References"] == "<cafe@customer.test>"
    assert msg["Message-ID"] == f"<{envelope.message_id}>"
    assert msg["Content-Language"] == "en"
    reply_to = msg["Reply-To"]
    # A supplier's notice carries the signed reply address too: its answer threads back.
    if kind in {"acknowledgement", "agent_replied", "status_changed", "supplier_message"}:
        token = reply_to.split("+", 1)[1].split("@")[0]
        assert read_reply_token(token, [SECRET]) == 123
    else:
        assert reply_to is None
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_foreign_message_id_is_not_echoed_unless_well_formed() -> None:
    """A customer Message-ID with spaces or line breaks never reaches our headers."""
    rendered = Renderer().render("acknowledgement", "en", SAMPLE)
    for bad in ("a b@c", "x@y\r\nBcc: evil@x.test", "no-at-sign", "x" * 500 + "@y"):
        envelope = Envelope(1, "acknowledgement", "a@b.test", 1, "mg.1.a.b@example.com", bad)
        msg = compose(envelope, rendered, from_address="support@example.com", secret="", now=NOW)
        assert msg["In-Reply-To"] is None and msg["Bcc"] is None


def _ingest(cli: Callable[..., Result], tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "in.eml"
    path.write_bytes(raw)
    result = cli("ingest", str(path))
    assert result.exit_code == 0, result.output


def test_notices_cli_list_and_retry(cli: Callable[..., Result], tmp_path: Path) -> None:
    """`notices list --json` shows the outbox; `retry` resends a failed one once; sent stays sent."""
    _ingest(cli, tmp_path, build())
    listed = json.loads(cli("notices", "list", "--json").output)
    assert [(n["kind"], n["state"], n["ticket"]) for n in listed] == [
        ("acknowledgement", "sent", 1)
    ]
    assert read_message_id(listed[0]["message_id"], [SECRET]) == 1
    eml = tmp_path / "outbox" / "notice-1.eml"
    assert eml.exists()
    again = cli("notices", "retry", "1")
    assert again.exit_code == 1 and "already sent" in again.output
    with sqlite3.connect(tmp_path / "mailgate.db") as db:
        db.execute("UPDATE notices SET state = 'failed', last_error = '550 no' WHERE id = 1")
    eml.unlink()
    retried = cli("notices", "retry", "1")
    assert retried.exit_code == 0 and "notice #1: sent" in retried.output
    assert eml.exists()
    failed = json.loads(cli("notices", "list", "--state", "failed", "--json").output)
    assert failed == []
    assert "no notice #7" in cli("notices", "retry", "7").output


def test_composed_bytes_are_those_of_policy_smtp() -> None:
    """The registry that shares parsed and folded headers between notices writes what the
    standard SMTP policy writes, byte for byte, however often a value comes back."""
    import email.policy
    import random
    from email.message import EmailMessage

    from mailgate.outbound import compose as composing

    renderer = Renderer()

    def written(message: EmailMessage, policy: email.policy.EmailPolicy | None) -> bytes:
        random.seed(7)  # the MIME boundary is drawn when the message is written
        return message.as_bytes(policy=policy)

    for i, kind in enumerate([*KINDS, *KINDS]):
        rendered = renderer.render(kind, LANGUAGES[i % 3], SAMPLE)
        notice = Envelope(i, kind, "Zoë <zoe@exämple.test>" if i % 2 else "c@x.test", 123, "m@x")
        ours = compose(notice, rendered, from_address="s@x.test", secret=SECRET, now=NOW)
        composing.POLICY, saved = email.policy.SMTP, composing.POLICY
        try:
            theirs = compose(notice, rendered, from_address="s@x.test", secret=SECRET, now=NOW)
        finally:
            composing.POLICY = saved
        for policy in (None, email.policy.SMTPUTF8):
            assert written(ours, policy) == written(theirs, policy)
