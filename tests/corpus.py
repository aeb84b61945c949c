"""Compare mailgate's parse of the Zammad corpus with Zammad's expected answers.

The `.yml` files are one reference implementation's answers, not ground truth
(see tests/data/zammad/SOURCE.md), so fields are compared after
normalising: addresses case-folded, whitespace folded, HTML bodies as text.
"""

from __future__ import annotations

import base64
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mailgate.core import html
from mailgate.core.attachments import sanitize_filename
from mailgate.core.message import ParsedMessage

FIELDS = ("from", "to", "subject", "body", "attachments")
# Names Zammad gives parts itself; mailgate keeps those parts as the body or raw message.
_SYNTHESIZED = re.compile(r"^(message\.html|Delivery report\.txt|Undelivered Message\.eml|"
                          r"Undelivered-Mail-Headers\.eml|delivery-status\.txt)$", re.I)  # fmt: skip


class _RubyLoader(yaml.SafeLoader):
    pass


_RubyLoader.add_multi_constructor(
    "!ruby/", lambda loader, _s, node: loader.construct_mapping(node, deep=True)
)
_RubyLoader.add_constructor(
    "!binary", lambda loader, node: base64.b64decode(loader.construct_scalar(node))
)


def load_expected(box: Path) -> dict[str, Any] | None:
    yml = box.with_suffix(".yml")
    if not yml.exists():
        return None
    with yml.open(encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=_RubyLoader)  # noqa: S506 - SafeLoader subclass, two tags added
    return data if isinstance(data, dict) else None


def _fold(text: str) -> str:
    return " ".join(text.split()).strip()


def _addresses(value: str) -> set[str]:
    return {m.lower() for m in re.findall(r"[\w.+'=-]+@[\w.-]+", value or "")}


def _similar(a: str, b: str) -> bool:
    a, b = _fold(a), _fold(b)
    if a == b:
        return True
    if not a or not b:
        return a == b
    return difflib.SequenceMatcher(None, a[:4000], b[:4000], autojunk=False).ratio() >= 0.9


@dataclass(frozen=True)
class Comparison:
    field: str
    ok: bool
    ours: str
    theirs: str


def compare(parsed: ParsedMessage, requester: str, expected: dict[str, Any]) -> list[Comparison]:
    """One Comparison per field the expected answer gives."""
    out: list[Comparison] = []
    if expected.get("from_email"):
        theirs = str(expected["from_email"]).lower()
        out.append(Comparison("from", requester.lower() == theirs, requester, theirs))
    if expected.get("to"):
        ours_to = {a.email.lower() for a in parsed.to}
        out.append(
            Comparison(
                "to", ours_to == _addresses(str(expected["to"])), str(ours_to), str(expected["to"])
            )
        )
    if "subject" in expected:
        theirs = _fold(str(expected.get("subject") or ""))
        out.append(Comparison("subject", _fold(parsed.subject) == theirs, parsed.subject, theirs))
    if expected.get("body") is not None:
        theirs = str(expected["body"])
        if theirs == "no visible content":  # Zammad's placeholder for an empty body
            theirs = ""
        if expected.get("content_type") == "text/html":
            theirs = html.to_text(theirs)
        ours = parsed.text
        out.append(Comparison("body", _similar(ours, theirs), ours[:200], theirs[:200]))
    if "attachments" in expected:
        theirs_names = sorted(
            str(a.get("filename"))
            for a in expected.get("attachments") or []
            if not (a.get("preferences") or {}).get("content-alternative")
            and not _SYNTHESIZED.match(str(a.get("filename")))
        )
        # Every file Zammad found, mailgate found too (mailgate also keeps parts Zammad drops,
        # such as DSN report parts); names compared as mailgate makes them safe.
        theirs_safe = {sanitize_filename(n, 0) for n in theirs_names}
        ours_names = {a.filename for a in parsed.attachments}
        out.append(
            Comparison(
                "attachments",
                theirs_safe <= ours_names,
                str(sorted(ours_names)),
                str(sorted(theirs_safe)),
            )
        )
    return out


def report() -> dict[str, tuple[int, int, list[str]]]:
    """Per field: (agreeing, compared, names of the mails that disagree)."""
    from mailgate.core.message import parse
    from mailgate.core.settings import LimitsSettings

    corpus = Path(__file__).resolve().parent / "data" / "zammad"
    table: dict[str, tuple[int, int, list[str]]] = {f: (0, 0, []) for f in FIELDS}
    for box in sorted(corpus.glob("*.box")):
        expected = load_expected(box)
        if expected is None:
            continue
        parsed = parse(box.read_bytes(), LimitsSettings())
        requester = parsed.sender.email if parsed.sender else ""
        for c in compare(parsed, requester, expected):
            ok, total, bad = table[c.field]
            table[c.field] = (ok + c.ok, total + 1, bad if c.ok else [*bad, box.stem])
    return table


if __name__ == "__main__":
    import logging

    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
    for field, (ok, total, bad) in report().items():
        print(f"{field:<12} {ok:>3}/{total:<3} {100 * ok / total:5.1f}%  differ: {', '.join(bad)}")
