"""Canned responses as text: their names, their placeholders, and filling them in.

A response body may name a few fixed values as jinja2 placeholders, like the text
modules of Zammad or the standard templates of OTRS (``Dear {{ requester_name }}``).
Only plain substitutions are allowed: no filters, conditions, loops or calls, so an
agent's text can neither reach into the program nor fail later in surprising ways.
It is checked when the response is saved and rendered in a sandbox with strict
undefined values when it is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from mailgate.core.errors import InvalidValue

NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MAX_BODY_CHARS = 100_000
# Top-level values, and the fields of ``ticket``; what each means is in the README.
VALUES = ("requester_name", "requester_email", "agent_name", "agent_email")
TICKET_FIELDS = ("number", "subject", "status", "priority", "type")
PLACEHOLDERS = (*VALUES, *(f"ticket.{f}" for f in TICKET_FIELDS))

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def check_name(name: str) -> str:
    """A response's name: lower-case letters, digits, ``_ . -``, up to 64 characters."""
    if not NAME.fullmatch(name):
        raise InvalidValue(
            "bad response name %(name)r: use 1-64 lower-case letters, digits, '_', '.' "
            "or '-', starting with a letter or digit",
            name=name,
        )
    return name


def check_body(body: str) -> str:
    """The body as stored: line endings normalised, not empty, placeholders all known."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
    if not text:
        raise InvalidValue("the response is empty")
    if len(text) > MAX_BODY_CHARS:
        raise InvalidValue("the response is longer than %(max)s characters", max=MAX_BODY_CHARS)
    for used in placeholders(text):
        if used not in PLACEHOLDERS:
            raise InvalidValue(
                "unknown placeholder {{ %(placeholder)s }} (known: %(known)s)",
                placeholder=used,
                known=", ".join(PLACEHOLDERS),
            )
    return text


def placeholders(body: str) -> list[str]:
    """The placeholders ``body`` uses, in order, as dotted names (``ticket.number``)."""
    try:
        tree = _ENV.parse(body)
    except TemplateSyntaxError as exc:
        raise InvalidValue(
            "the response does not parse on line %(line)s: %(problem)s",
            line=exc.lineno,
            problem=exc.message,
        ) from None
    return list(_names(tree))


def _names(tree: nodes.Template) -> Iterator[str]:
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            raise InvalidValue(
                "only {{ placeholder }} substitutions are allowed in a response, "
                "no {% ... %} blocks"
            )
        for part in node.nodes:
            if isinstance(part, nodes.TemplateData | nodes.Const):
                continue  # literal text, or a quoted literal like {{ '{{' }}
            yield _dotted(part)


def _dotted(expr: nodes.Node) -> str:
    if isinstance(expr, nodes.Name):
        return expr.name
    if isinstance(expr, nodes.Getattr) and isinstance(expr.node, nodes.Name):
        return f"{expr.node.name}.{expr.attr}"
    raise InvalidValue(
        "only plain {{ placeholder }} substitutions are allowed in a response (known: %(known)s)",
        known=", ".join(PLACEHOLDERS),
    )


def render(body: str, values: Mapping[str, str], ticket: Mapping[str, str]) -> str:
    """``body`` with its placeholders filled from ``values`` and ``ticket``."""
    check_body(body)  # a row written around the CLI still gets the same rules
    try:
        return _ENV.from_string(body).render(**values, ticket=dict(ticket))
    except TemplateError as exc:
        raise InvalidValue(
            "the response cannot be filled in: %(problem)s", problem=exc.message
        ) from None
