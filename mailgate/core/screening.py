"""Screening: is an inbound message automatic mail that must never be answered (invariant 5)?

One small named check per signal, each returning a frozen ``Verdict`` or None; the
engine runs them all and records every match, so an operator can see why a message
was not acknowledged. Pure: values in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailgate.core.authentication import dmarc_results
from mailgate.core.bounces import reported_message_ids
from mailgate.core.headers import strip_reply_prefix
from mailgate.core.loop import LOOP_HEADER
from mailgate.core.message import ParsedMessage

# Categories, from the strongest to the weakest. The first three are "automatic":
# recorded on their ticket, but they never cause a notice and never change a status.
BOUNCE = "bounce"
LOOP = "loop"
AUTO_REPLY = "auto_reply"
BULK = "bulk"
NOREPLY = "noreply"
NULL_SENDER = "null_sender"
FORGED = "forged"
ORDINARY = "ordinary"
_ORDER = (BOUNCE, LOOP, AUTO_REPLY, BULK, NOREPLY, NULL_SENDER, FORGED)
AUTOMATIC = frozenset({BOUNCE, LOOP, AUTO_REPLY})


@dataclass(frozen=True)
class Verdict:
    """One check that matched: its name, the category it puts the message in, and why."""

    check: str
    category: str
    reason: str


@dataclass(frozen=True)
class ScreenContext:
    """What the checks need besides the message itself."""

    loop_marker: str = ""
    trusted_authserv_ids: tuple[str, ...] = ()
    envelope_from: str | None = None  # None when the transport did not say


@dataclass(frozen=True)
class Screening:
    """Every verdict for one message, and what follows from them."""

    verdicts: tuple[Verdict, ...] = ()
    # Message-IDs of the message a bounce reports on (RFC 3464 attaches its headers).
    reported_ids: tuple[str, ...] = ()
    dmarc: str = "none"  # pass | fail | other_domain | none (no trusted result) | unparsable

    @property
    def category(self) -> str:
        """The strongest category that matched, or ``ordinary``."""
        found = {v.category for v in self.verdicts}
        return next((c for c in _ORDER if c in found), ORDINARY)

    @property
    def automatic(self) -> bool:
        """A bounce, an auto-reply or our own mail: causes no notice and no status change."""
        return self.category in AUTOMATIC

    @property
    def answerable(self) -> bool:
        """False when no automatic mail may go to this message's sender (invariant 5)."""
        return not self.verdicts

    @property
    def dmarc_failed(self) -> bool:
        return self.dmarc == "fail"

    @property
    def forged(self) -> bool:
        """The sender cannot be believed (DMARC failed, judged another domain, or the
        From is ambiguous): such mail never joins an existing ticket."""
        return any(v.category == FORGED for v in self.verdicts)

    @property
    def reason(self) -> str:
        return "; ".join(f"{v.check}: {v.reason}" for v in self.verdicts) or "no signal"

    def as_json(self) -> dict[str, Any]:
        """What is kept on the ticket message (``TicketMessage.screening``)."""
        return {
            "category": self.category,
            "automatic": self.automatic,
            "answerable": self.answerable,
            "dmarc": self.dmarc,
            "verdicts": [
                {"check": v.check, "category": v.category, "reason": v.reason}
                for v in self.verdicts
            ],
            "reported_ids": list(self.reported_ids),
        }


Check = Callable[[ParsedMessage, ScreenContext], Verdict | None]


def _local(address: str) -> str:
    return address.strip().strip("<>").rpartition("@")[0].lower()


def _return_path(parsed: ParsedMessage, ctx: ScreenContext) -> str | None:
    """The envelope sender: from the transport when it said, else the Return-Path header."""
    if ctx.envelope_from is not None:
        return ctx.envelope_from
    value = parsed.header("return-path")
    return value.strip() if value else None


def auto_submitted(parsed: ParsedMessage, _ctx: ScreenContext) -> Verdict | None:
    # RFC 3834 §5: any value other than "no" marks the message as automatic.
    value = parsed.header("auto-submitted").split(";")[0].strip().lower()
    if value and value != "no":
        return Verdict("auto_submitted", AUTO_REPLY, f"Auto-Submitted: {value}")
    return None


def x_autoreply(parsed: ParsedMessage, _ctx: ScreenContext) -> Verdict | None:
    value = parsed.header("x-autoreply") or parsed.header("x-autorespond")
    if value and value.strip().lower() not in {"no", "false", "0"}:
        return Verdict("x_autoreply", AUTO_REPLY, "X-Autoreply/X-Autorespond present")
    return None


def auto_response_suppress(parsed: ParsedMessage, _ctx: ScreenContext) -> Verdict | None:
    # Exchange marks its own automatic mail (out-of-office, receipts) this way and asks
    # that nothing answer it; honouring the request is the safe reading.
    value = parsed.header("x-auto-response-suppress")
    tokens = {t.strip().lower() for t in value.split(",")}
    if tokens & {"all", "oof", "autoreply"}:
        return Verdict(
            "auto_response_suppress", AUTO_REPLY, f"X-Auto-Response-Suppress: {value[:60]}"
        )
    return None


def precedence(parsed: ParsedMessage, _ctx: ScreenContext) -> Verdict | None:
    value = parsed.header("precedence").strip().lower()
    if value in {"bulk", "list", "junk"}:
        return Verdict("precedence", BULK, f"Precedence: {value}")
    if value == "auto_reply":
        return Verdict("precedence", AUTO_REPLY, "Precedence: auto_reply")
    return None


def list_mail(parsed: ParsedMessage, _ctx: ScreenContext) -> Verdict | None:
    # RFC 2919 List-Id and RFC 2369 List-Unsubscribe: only lists and bulk senders set them.
    if parsed.header("list-id"):
        return Verdict("list_mail", BULK, "List-Id present")
    if parsed.header("list-unsubscribe"):
        return Verdict("list_mail", BULK, "List-Unsubscribe present")
    return None


_LIST_ENVELOPE = re.compile(r"^(owner-.+|.+-(owner|request|bounces?))$")


def list_envelope(parsed: ParsedMessage, ctx: ScreenContext) -> Verdict | None:
    # Majordomo and Mailman send list traffic from owner-<list> / <list>-bounces.
    local = _local(_return_path(parsed, ctx) or "")
    if local and _LIST_ENVELOPE.match(local):
        return Verdict("list_envelope", BULK, f"envelope sender {local}@... is a list's")
    return None


_OOO_PREFIXES = (
    # English
    "out of office",
    "out of the office",
    "automatic reply",
    "auto-reply",
    "autoreply",
    "auto reply",
    "auto response",
    "auto:",
    "away from the office",
    "on vacation",
    "vacation reply",
    # French
    "absence du bureau",
    "absent du bureau",
    "réponse automatique",
    "reponse automatique",
    "message d'absence",
    "je suis absent",
    # Spanish
    "fuera de la oficina",
    "respuesta automática",
    "respuesta automatica",
    "ausente de la oficina",
    "respuesta de ausencia",
    "estoy fuera de la oficina",
    # German
    "abwesenheitsnotiz",
    "automatische antwort",
    "abwesend",
    "außer haus",
    "nicht im büro",
    "abwesenheit",
)


def out_of_office_subject(parsed: ParsedMessage, _ctx: ScreenContext) -> Verdict | None:
    # Only at the start of the subject: "Automatic reply: <their subject>" is how
    # Outlook, Exchange, Gmail and Notes phrase it; a phrase mid-subject is a human's.
    subject = strip_reply_prefix(parsed.subject).lower()
    for phrase in _OOO_PREFIXES:
        if subject.startswith(phrase):
            return Verdict("out_of_office_subject", AUTO_REPLY, f"subject starts with {phrase!r}")
    return None


def delivery_report(parsed: ParsedMessage, _ctx: ScreenContext) -> Verdict | None:
    # RFC 3462/3464: a DSN is multipart/report; report-type=delivery-status.
    content_type = parsed.header("content-type").lower()
    if parsed.content_type == "multipart/report" or "delivery-status" in content_type:
        kind = "delivery-status" if "delivery-status" in content_type else "report"
        return Verdict("delivery_report", BOUNCE, f"multipart/report ({kind})")
    return None


_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}


def daemon_sender(parsed: ParsedMessage, ctx: ScreenContext) -> Verdict | None:
    sender = _local(parsed.sender.email) if parsed.sender else ""
    envelope = _local(_return_path(parsed, ctx) or "") or (
        (_return_path(parsed, ctx) or "").strip("<> ").lower()
    )
    for who, local in (("From", sender), ("envelope sender", envelope)):
        if local in _DAEMONS:
            return Verdict("daemon_sender", BOUNCE, f"{who} is {local}")
    return None


def null_sender(parsed: ParsedMessage, ctx: ScreenContext) -> Verdict | None:
    # RFC 3834 §2 and RFC 5321 §4.5.5: mail with a null reverse-path is a notification;
    # nothing may answer it.
    path = _return_path(parsed, ctx)
    if path is not None and path.strip() == "<>":
        return Verdict("null_sender", NULL_SENDER, "envelope sender is <>")
    return None


_NOREPLY = re.compile(r"(^|[-_.+])(no|do[-_.]?not)[-_.]?reply($|[-_.+])")


def noreply_sender(parsed: ParsedMessage, ctx: ScreenContext) -> Verdict | None:
    for who, address in (
        ("From", parsed.sender.email if parsed.sender else ""),
        ("envelope sender", _return_path(parsed, ctx) or ""),
    ):
        local = _local(address)
        if local and _NOREPLY.search(local):
            return Verdict("noreply_sender", NOREPLY, f"{who} {local}@... asks for no reply")
    return None


def own_loop_marker(parsed: ParsedMessage, ctx: ScreenContext) -> Verdict | None:
    values = [v.strip().lower() for v in parsed.header_all(LOOP_HEADER.lower())]
    if not values:
        return None
    if ctx.loop_marker and ctx.loop_marker.lower() in values:
        return Verdict("own_loop_marker", LOOP, f"carries our own {LOOP_HEADER}")
    return Verdict("own_loop_marker", AUTO_REPLY, f"carries another mailgate's {LOOP_HEADER}")


def dmarc_fail(parsed: ParsedMessage, ctx: ScreenContext) -> Verdict | None:
    verdict = _dmarc(parsed, ctx)
    if verdict == "fail":
        return Verdict("dmarc_fail", FORGED, "a trusted Authentication-Results says dmarc=fail")
    if verdict == "other_domain":
        # The verifier judged another From than the one read here (two From fields, an
        # address hidden in a display name): its pass vouches for someone else.
        return Verdict(
            "dmarc_other_domain",
            FORGED,
            "a trusted dmarc result judged another From domain than the sender's",
        )
    return None


def ambiguous_from(parsed: ParsedMessage, ctx: ScreenContext) -> Verdict | None:
    """A From that can be read as more than one sender (two From fields, a group, an
    address written as the display name, a bare CR): what a DMARC verifier judged may not
    be what is read here, so the sender proves nothing. Only where DMARC is trusted at
    all (``security.trusted_authserv_ids``): without it no From proves anything anyway,
    and real mailers do repeat From."""
    if ctx.trusted_authserv_ids and parsed.sender_ambiguity:
        return Verdict("ambiguous_from", FORGED, parsed.sender_ambiguity)
    return None


CHECKS: tuple[Check, ...] = (
    delivery_report,
    daemon_sender,
    own_loop_marker,
    auto_submitted,
    x_autoreply,
    auto_response_suppress,
    out_of_office_subject,
    precedence,
    list_mail,
    list_envelope,
    noreply_sender,
    null_sender,
    dmarc_fail,
    ambiguous_from,
)


def _dmarc(parsed: ParsedMessage, ctx: ScreenContext) -> str:
    results = dmarc_results(parsed.header_all("authentication-results"), ctx.trusted_authserv_ids)
    verdicts = [r for r, _ in results]
    if "fail" in verdicts:
        return "fail"
    sender_domain = parsed.sender.email.rpartition("@")[2].lower() if parsed.sender else ""
    passed = [domain for r, domain in results if r == "pass"]
    if passed:
        # A pass counts only for the domain of the sender read here (RFC 7489 §3.1: the
        # verifier judged exactly one RFC5322.From; header.from names its domain).
        return "pass" if all(d in ("", sender_domain) for d in passed) else "other_domain"
    if "unparsable" in verdicts:
        return "unparsable"
    return "none"


def screen(
    parsed: ParsedMessage,
    ctx: ScreenContext,
    *,
    raw: bytes = b"",
    checks: tuple[Check, ...] = CHECKS,
) -> Screening:
    """Run every check over ``parsed``; ``raw`` lets a bounce name the message it reports on."""
    verdicts = tuple(v for check in checks if (v := check(parsed, ctx)) is not None)
    reported: tuple[str, ...] = ()
    if any(v.category == BOUNCE for v in verdicts):
        reported = tuple(
            dict.fromkeys(
                reported_message_ids(raw, parsed.text)
                + parsed.in_reply_to
                + tuple(reversed(parsed.references))
            )
        )
    return Screening(verdicts, reported, _dmarc(parsed, ctx))
