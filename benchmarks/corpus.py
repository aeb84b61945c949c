"""A seeded, reproducible corpus of realistic support mail, written to an mbox.

    python3 benchmarks/corpus.py OUT.mbox [--count 1000] [--seed 1]

or, from another benchmark::

    from corpus import messages, write_mbox
    write_mbox(Path("corpus.mbox"), count=1000, seed=1)

The same (count, seed) always gives byte-identical output: every choice, every date
and every Message-ID comes from one ``random.Random(seed)``, never from the clock.
The first ``n`` messages of a larger corpus equal a corpus of ``n`` with the same seed.

What it looks like (issue 23 measured this shape): mail to support@example.com from a
few hundred customer addresses over a dozen domains; about a third are replies threaded
to an earlier message (In-Reply-To, References, "Re:" subject, the new text on top and
the earlier text quoted below "On ... wrote:"); plain text or multipart/alternative
(text and an Outlook-style HTML part); some paste logs; 15% carry one or more 10-200 KB
attachments (base64, PDF/PNG/ZIP-like random bytes). Seed 1, 1000 messages: 31 MB,
mean 31 KB, median 8 KB (smaller corpora have a smaller mean: threads grow quotes).
"""

from __future__ import annotations

import argparse
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime
from pathlib import Path

SUPPORT = "support@example.com"
# mbox stores LF line endings; messages() yields exactly the bytes written there.
POLICY = default.clone(linesep="\n")
REPLY_SHARE = 1 / 3
ATTACHMENT_SHARE = 0.15
HTML_SHARE = 0.55
LOG_SHARE = 0.3

FIRST = ["Anna", "Ben", "Carla", "David", "Eva", "Farid", "Grace", "Hiro", "Ines", "José",
         "Katrin", "Liam", "Mei", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tanja",
         "Uma", "Victor", "Wen", "Xavier", "Yusuf", "Zoë", "Amélie", "Björn", "Chloé",
         "Dmitri"]  # fmt: skip
LAST = ["Müller", "Smith", "García", "Nguyen", "Kowalski", "Rossi", "Jensen", "Okafor", "Silva",
        "Tanaka", "Dubois", "Novak", "Larsen", "Fischer", "O'Brien", "Patel", "Berg",
        "Costa"]  # fmt: skip
DOMAINS = ["acme.test", "globex.test", "initech.test", "umbrella.test", "hooli.test",
           "stark-industries.test", "wayne-enterprises.test", "example.org", "mail.test",
           "contoso.test", "fabrikam.test", "northwind.test"]  # fmt: skip
PRODUCTS = ["the VPN client", "the billing portal", "single sign-on", "the mobile app",
            "the reporting dashboard", "the API", "the sync agent", "the printer queue",
            "Outlook", "the shared drive", "the CRM export", "two-factor login"]  # fmt: skip
PROBLEMS = ["stopped working", "is very slow", "shows an error", "keeps logging me out",
            "will not start", "lost my settings", "times out", "sends duplicate emails",
            "crashes on startup", "rejects my password", "shows the wrong totals"]  # fmt: skip
SUBJECTS = ["{product} {problem}", "Problem with {product}", "Urgent: {product} {problem}",
            "Question about {product}", "{product}: error {code}", "Help needed - {product}",
            "Outage? {product} {problem}", "Invoice {invoice} is wrong",
            "Access request for {product}", "Feature request: {product}",
            "{product} {problem} since the update"]  # fmt: skip
SENTENCES = [
    "Since this morning {product} {problem} for everyone on our team.",
    "We did not change anything on our side as far as I know.",
    "I have already restarted my laptop and cleared the cache, with no effect.",
    "The error message says: ERR-{code} (request id {hexid}).",
    "It happens on Windows 11 and on macOS 14, both on the office network and at home.",
    "Could you please have a look at this as soon as possible? We have a deadline on {day}.",
    "My colleague {colleague} reports the same behaviour since {day}.",
    "Our account number is {invoice}, in case you need it.",
    "Steps to reproduce: open {product}, sign in, go to settings and press save.",
    "The last time this happened you told us to reinstall, but that did not help this time.",
    "I attached a screenshot and the export so you can see what I mean.",
    "Is there a known issue, or a status page where I can follow it?",
    "We are about {users} users, and roughly half of them are affected.",
    "Please let me know if you need any further information from us.",
    "Thanks for the quick answer yesterday, unfortunately the workaround no longer works.",
    "The totals on invoice {invoice} do not match our purchase order.",
    "I tried again at {time} and it failed with the same message.",
]
GREETINGS = ["Hello,", "Hi,", "Dear support team,", "Good morning,", "Hi there,", "Hello support,"]
CLOSINGS = ["Best regards,", "Kind regards,", "Thanks,", "Cheers,", "Many thanks,", "Regards,"]
DISCLAIMER = (
    "This e-mail and any attachments are confidential and may be privileged. If you are not "
    "the intended recipient, please notify the sender immediately and delete it from your "
    "system. Any unauthorised use, disclosure or copying is strictly prohibited. "
)
LOG_LINE = "{stamp} {level:<5} [{thread}] {logger} - {text} (id={hexid})"
LOGGERS = ["net.tunnel", "auth.session", "sync.worker", "http.client", "db.pool", "ui.main"]
LOG_TEXT = ["connection reset by peer", "retrying in 5s", "token expired", "handshake failed",
            "slow response from upstream", "cache miss", "request completed",
            "socket timeout"]  # fmt: skip
# Magic bytes in front of random content: attachments look like what customers send
# (screenshots, PDFs, zipped logs) to anything that sniffs types, and do not compress.
KINDS = [
    ("application", "pdf", "pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
    ("image", "png", "png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
    ("application", "zip", "zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00"),
]
# The HTML a common mail client emits: a large head of styles around the same text.
HTML_HEAD = (
    '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>'
    '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
    '<style><!-- @font-face {font-family:"Cambria Math"; panose-1:2 4 5 3 5 4 6 3 2 4;} '
    + "".join(
        f"p.MsoStyle{i}, li.MsoStyle{i}, div.MsoStyle{i} {{margin:0cm; font-size:11.0pt; "
        f'font-family:"Calibri",sans-serif; mso-fareast-language:EN-US;}} '
        for i in range(12)
    )
    + '--></style></head><body lang="EN-GB" link="#0563C1" vlink="#954F72">'
    + '<div class="WordSection1">'
)


@dataclass
class _Sent:
    """What a later reply needs from an earlier message."""

    message_id: str
    references: list[str]
    subject: str
    sender: Address
    date: datetime
    text: str


def _customers(rng: random.Random, count: int = 300) -> list[Address]:
    people = []
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        # Addresses are ASCII (José -> jose); display names keep their accents.
        plain = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore")
        local = plain.decode().lower().replace("'", "")
        people.append(Address(f"{first} {last}", f"{local}{i}", rng.choice(DOMAINS)))
    return people


def _fill(rng: random.Random, template: str, when: datetime) -> str:
    return template.format(
        product=rng.choice(PRODUCTS),
        problem=rng.choice(PROBLEMS),
        code=rng.randint(100, 9999),
        invoice=f"INV-{rng.randint(10000, 99999)}",
        hexid=f"{rng.getrandbits(64):016x}",
        day=rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]),
        colleague=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        users=rng.choice([12, 40, 85, 150, 600]),
        time=when.strftime("%H:%M"),
    )


def _log(rng: random.Random, when: datetime) -> str:
    # Customers paste logs: long lines of near-random content, the bulk of many bodies.
    lines = []
    stamp = when - timedelta(minutes=30)
    for _ in range(rng.randint(20, 300)):
        stamp += timedelta(milliseconds=rng.randint(1, 4000))
        lines.append(
            LOG_LINE.format(
                stamp=stamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                level=rng.choice(["INFO", "INFO", "DEBUG", "WARN", "ERROR"]),
                thread=f"worker-{rng.randint(1, 16)}",
                logger=rng.choice(LOGGERS),
                text=rng.choice(LOG_TEXT),
                hexid=f"{rng.getrandbits(48):012x}",
            )
        )
    return "Here is the log from this morning:\n\n" + "\n".join(lines)


def _new_text(rng: random.Random, sender: Address, when: datetime) -> str:
    paragraphs = [rng.choice(GREETINGS)]
    for _ in range(rng.randint(1, 5)):
        count = rng.randint(1, 4)
        paragraphs.append(" ".join(_fill(rng, rng.choice(SENTENCES), when) for _ in range(count)))
    if rng.random() < LOG_SHARE:
        paragraphs.append(_log(rng, when))
    signature = f"{rng.choice(CLOSINGS)}\n{sender.display_name}\n{sender.domain}"
    if rng.random() < 0.5:
        phone = f"+{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(10**6, 10**7 - 1)}"
        signature += f"\nPhone {phone}"
        signature += "\n\n" + DISCLAIMER * rng.randint(1, 3)
    paragraphs.append(signature)
    return "\n\n".join(paragraphs)


def _quote(parent: _Sent) -> str:
    # "On <date>, <name> wrote:" then every earlier line prefixed with "> " (nested
    # quotes become "> > "), below the new text as most mail clients put it.
    when = parent.date.strftime("%a, %d %b %Y at %H:%M")
    header = f"On {when}, {parent.sender.display_name} <{parent.sender.addr_spec}> wrote:"
    lines = [f"> {line}" if line else ">" for line in parent.text.split("\n")]
    return header + "\n" + "\n".join(lines)


def _html(text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = "".join(
        f'<p class="MsoNormal">{para.replace(chr(10), "<br>")}<o:p></o:p></p>\n'
        for para in escaped.split("\n\n")
    )
    return HTML_HEAD + body + "</div></body></html>\n"


def _attachment_size(rng: random.Random) -> int:
    # Log-uniform between 10 and 200 KB: many small screenshots, a few large exports.
    return int(10_000 * 20 ** rng.random())


def _build(
    rng: random.Random, people: list[Address], history: list[_Sent], when: datetime, n: int
) -> tuple[EmailMessage, _Sent]:
    parent = None
    if history and rng.random() < REPLY_SHARE:
        # Recent messages are far likelier to get an answer than old ones.
        parent = history[max(0, len(history) - 1 - int(rng.expovariate(1 / 25)))]
    if parent is None:
        sender = rng.choice(people)
        subject = _fill(rng, rng.choice(SUBJECTS), when)
        text = _new_text(rng, sender, when)
        references: list[str] = []
    else:
        # Mostly the same person follows up; sometimes a colleague from the same company.
        sender = parent.sender
        if rng.random() < 0.25:
            sender = rng.choice([p for p in people if p.domain == parent.sender.domain])
        subject = parent.subject if parent.subject.startswith("Re: ") else f"Re: {parent.subject}"
        text = _new_text(rng, sender, when) + "\n\n" + _quote(parent)
        references = [*parent.references, parent.message_id][-10:]
    message_id = f"<{rng.getrandbits(96):024x}.{n}@{sender.domain}>"
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id
    if parent is not None:
        msg["In-Reply-To"] = parent.message_id
        msg["References"] = " ".join(references)
    msg["MIME-Version"] = "1.0"
    msg.set_content(text)
    if rng.random() < HTML_SHARE:
        msg.add_alternative(_html(text), subtype="html")
    if rng.random() < ATTACHMENT_SHARE:
        for k in range(1 if rng.random() < 0.8 else rng.randint(2, 3)):
            maintype, subtype, ext, magic = rng.choice(KINDS)
            data = magic + rng.randbytes(_attachment_size(rng) - len(magic))
            msg.add_attachment(
                data, maintype=maintype, subtype=subtype, filename=f"attachment-{n}-{k}.{ext}"
            )
    # The email package draws MIME boundaries from the global random module: choose
    # them here instead, or the same seed would give different bytes each run. "=_"
    # never occurs in base64 or quoted-printable output, so it cannot clash with content.
    for depth, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_mg{rng.getrandbits(64):016x}.{depth}")
    sent = _Sent(message_id, references, subject, sender, when, text)
    return msg, sent


def _generate(count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """(sender address, message bytes) pairs: the sender goes on the mbox separator."""
    rng = random.Random(seed)  # noqa: S311 - reproducibility is the point, not secrecy
    people = _customers(rng)
    history: list[_Sent] = []
    when = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)
    zones = [timezone(timedelta(hours=h)) for h in (-8, -5, 0, 1, 2, 5.5, 9)]
    for n in range(count):
        when += timedelta(seconds=rng.randint(5, 600))
        msg, sent = _build(rng, people, history, when.astimezone(rng.choice(zones)), n)
        history.append(sent)
        yield sent.sender.addr_spec, msg.as_bytes(policy=POLICY)


def messages(count: int = 1000, seed: int = 1) -> Iterator[bytes]:
    """Yield ``count`` RFC 5322 messages (LF line endings), the same ones for the same seed."""
    for _, raw in _generate(count, seed):
        yield raw


def _write(path: Path, count: int, seed: int) -> list[int]:
    sizes = []
    with path.open("wb") as out:
        for sender, raw in _generate(count, seed):
            sizes.append(len(raw))
            # A fixed separator date keeps the file byte-identical from run to run.
            out.write(f"From {sender} Mon Mar  4 08:00:00 2024\n".encode())
            # mboxrd quoting, so a body line starting with "From " cannot split a message
            # (the generator writes none, so in practice nothing is changed).
            lines = raw.split(b"\n")
            for i, line in enumerate(lines):
                if line.lstrip(b">").startswith(b"From "):
                    lines[i] = b">" + line
            out.write(b"\n".join(lines))
            # The blank line before the next separator is not part of the message:
            # readers (Python's mailbox among them) drop it and get ``raw`` back exactly.
            out.write(b"\n" if raw.endswith(b"\n") else b"\n\n")
    return sizes


def write_mbox(path: Path, count: int = 1000, seed: int = 1) -> Path:
    """Write ``messages(count, seed)`` to the mbox ``path`` (replacing it) and return it."""
    _write(path, count, seed)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the mbox file to write")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = _write(args.out, args.count, args.seed)
    total = sum(sizes)
    print(
        f"{len(sizes)} messages, {total / 1e6:.1f} MB in total, "
        f"mean {total / max(1, len(sizes)) / 1e3:.1f} KB -> {args.out}"
    )


if __name__ == "__main__":
    main()
