"""Notice templates: jinja2 files under ``templates/<language>/``, text and HTML.

An operator's folder (``outbound.templates``) is searched first, file by file, then the
built-in set. Templates only ever see ``NoticeValues``: system vocabulary, the ticket
reference, the portal link and dates, never text a customer or agent wrote (invariant 3).
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

import jinja2

from mailgate.core.notices import ALL_KINDS

BUILT_IN = Path(str(files("mailgate") / "templates"))
PARTS = ("subject", "txt", "html")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class NoticeValues:
    """Everything a template may show."""

    number: int | None  # None for a notice about no ticket (intake_refused)
    tag: str  # e.g. "[#123]"
    url: str
    status: str
    type: str
    priority: str
    recipient: str
    date: str
    # Whom to ask (intake_refused): addresses from the config, never from the mail.
    contact: str = ""
    # Reminders: which target or date fell due (first_response, resolution, follow_up,
    # action_required) and when, e.g. "2026-01-05 10:30 UTC".
    due: str = ""
    due_at: str = ""


@dataclass(frozen=True)
class Rendered:
    language: str
    subject: str
    text: str
    html: str


SAMPLE = NoticeValues(
    number=123,
    tag="[#123]",
    url="https://support.example.com/tickets/123",
    status="Open",
    type="General",
    priority="Normal",
    recipient="customer@example.com",
    date="2026-01-05",
    contact="admin@customer.example",
    due="first_response",
    due_at="2026-01-05 10:30 UTC",
)


class Renderer:
    """Renders notices; ``renderer_for`` keeps one per process, so that jinja2 compiles
    each template once."""

    def __init__(self, own_folder: str = "", *, default_language: str = "en") -> None:
        folders = [Path(own_folder)] if own_folder else []
        self.folders = [*folders, BUILT_IN]
        self.default_language = default_language
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(f) for f in self.folders]),
            # HTML is escaped; text parts are not HTML, so escaping would corrupt them.
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )

    def languages(self) -> list[str]:
        """Languages with at least one template, in any folder."""
        found = {
            d.name
            for folder in self.folders
            if folder.is_dir()
            for d in folder.iterdir()
            if d.is_dir() and _LANGUAGE.match(d.name)
        }
        return sorted(found)

    def language_for(self, kind: str, language: str) -> str:
        """``language`` when it has this notice's templates, else the default, else English."""
        for candidate in (language, self.default_language, "en"):
            if _LANGUAGE.match(candidate) and self._has(candidate, kind):
                return candidate
        raise jinja2.TemplateNotFound(f"{kind} in any of {language}, {self.default_language}, en")

    def _has(self, language: str, kind: str) -> bool:
        # Per file: an operator may override only some of a language's files.
        return all(
            any((folder / language / f"{kind}.{part}").is_file() for folder in self.folders)
            for part in PARTS
        )

    def render(self, kind: str, language: str, values: NoticeValues) -> Rendered:
        """Subject, text and HTML of one notice. Raises jinja2 errors for a broken template."""
        if kind not in ALL_KINDS:
            raise ValueError(f"unknown notice kind {kind!r}")
        lang = self.language_for(kind, language)
        context = asdict(values)
        subject = self.env.get_template(f"{lang}/{kind}.subject").render(context)
        return Rendered(
            language=lang,
            subject=" ".join(subject.split()),
            text=self.env.get_template(f"{lang}/{kind}.txt").render(context).strip() + "\n",
            html=self.env.get_template(f"{lang}/{kind}.html").render(context),
        )

    def subject(self, kind: str, language: str, values: NoticeValues) -> str:
        """The subject line alone: what a chat message says (``outbound.chat_delivery``),
        content-free like every template."""
        if kind not in ALL_KINDS:
            raise ValueError(f"unknown notice kind {kind!r}")
        lang = self.language_for(kind, language)
        subject = self.env.get_template(f"{lang}/{kind}.subject").render(asdict(values))
        return " ".join(subject.split())


@functools.lru_cache(maxsize=8)
def renderer_for(own_folder: str = "", default_language: str = "en") -> Renderer:
    """The process's renderer for these settings: jinja2 compiles each template once and
    reloads it only when its file changes (it checks the file's time on every use)."""
    return Renderer(own_folder, default_language=default_language)


def check_templates(own_folder: str = "", *, default_language: str = "en") -> list[str]:
    """Render every template of every language with sample values; one problem a line.

    Used by ``mailgate check-config`` so a broken template fails there, not at a send.
    """
    problems: list[str] = []
    if own_folder and not Path(own_folder).is_dir():
        return [f"outbound.templates: {own_folder}: not a folder"]
    renderer = Renderer(own_folder, default_language=default_language)
    for language in renderer.languages():
        for kind in ALL_KINDS:
            for part in PARTS:
                name = f"{language}/{kind}.{part}"
                try:
                    source = renderer.env.get_template(name)
                except jinja2.TemplateNotFound:
                    continue  # this language falls back to the default for this file
                except jinja2.TemplateError as exc:
                    problems.append(f"outbound.templates: {name}: {_describe(exc)}")
                    continue
                try:
                    source.render(asdict(SAMPLE))
                except jinja2.TemplateError as exc:
                    problems.append(f"outbound.templates: {name}: {_describe(exc)}")
    try:
        for kind in ALL_KINDS:
            renderer.language_for(kind, default_language)
    except jinja2.TemplateNotFound as exc:
        problems.append(f"outbound.templates: no template for {exc}")
    return problems


def _describe(exc: jinja2.TemplateError) -> str:
    line = getattr(exc, "lineno", None)
    return f"line {line}: {exc.message}" if line else str(exc.message or exc)
