r"""The portal's languages: gettext catalogs read with Babel, and which one a request gets.

The catalogs are ``mailgate/locale/<language>/LC_MESSAGES/messages.po``, extracted from
the templates and the Python code by ``pybabel`` (``babel.cfg`` says where). Besides the
default keywords (``_``, ``N_``, ``ngettext``...), the msgid templates of the errors a
page shows (``InvalidValue``, ``ActionRefused``: ``mailgate.core.errors``), from the
repository's root::

    pybabel extract -F babel.cfg -k N_ -k InvalidValue -k ActionRefused \
        -o mailgate/locale/messages.pot .
    pybabel update -i mailgate/locale/messages.pot -d mailgate/locale

(``python3 -m mailgate.web.catalogs`` does both with the same keywords, without the
``.pot`` file.)

The ``.po`` file is the one artefact: it is compiled in memory the first time a process
needs that language, so a source checkout, an editable install and a wheel can never
run a stale ``.mo``.

A request's language, first that applies: the switcher's cookie (a choice made on
purpose), the signed-in customer account's language, the browser's ``Accept-Language``,
``defaults.language``, English.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from pathlib import Path

from babel.core import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from starlette.requests import Request

# The web marks its words with the core's N_ (the write side marks its own the same way).
from mailgate.core.i18n import N_ as N_  # noqa: PLC0414 - re-exported (mypy strict)

LANGUAGES = ("en", "fr", "es")
# Each language named in itself, for the switcher.
NAMES = {"en": "English", "fr": "Français", "es": "Español"}
COOKIE = "mailgate_lang"
LOCALES = Path(str(files("mailgate") / "locale"))


# The names a new install comes with (core/settings.py: statuses, types, priorities,
# activity types, link kinds) and participants' roles. Pages show every such name through
# the ``label`` filter: these are in the catalogs; a name an operator configured is shown
# as written.
BUILT_IN_NAMES = (
    N_("New"),
    N_("Open"),
    N_("Waiting"),
    N_("On Hold"),
    N_("Resolved"),
    N_("Closed"),
    N_("General"),
    N_("Technical"),
    N_("Low"),
    N_("Normal"),
    N_("High"),
    N_("Urgent"),
    N_("Call"),
    N_("Email"),
    N_("Meeting"),
    N_("Remote session"),
    N_("Research"),
    N_("related"),
    N_("duplicate of"),
    N_("duplicated by"),
    N_("parent of"),
    N_("child of"),
    N_("blocks"),
    N_("blocked by"),
    N_("follows"),
    N_("followed by"),
    N_("referenced"),
    N_("merged into"),
    N_("merged from"),
    # A participant's part in a ticket (tickets/opening.py).
    N_("requester"),
    N_("cc"),
)


# How the screening sorted a ticket's first message (core/screening.py), in words: the
# queue and the ticket page show these, never the stored value.
SCREENING = {
    "bounce": N_("bounce"),
    "loop": N_("mail loop"),
    "auto_reply": N_("auto-reply"),
    "bulk": N_("bulk"),
    "noreply": N_("no-reply sender"),
    "null_sender": N_("null sender"),
    "forged": N_("forged sender"),
    "ordinary": N_("ordinary"),
}


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalog of ``language`` (English: the msgids themselves)."""
    po = LOCALES / language / "LC_MESSAGES" / "messages.po"
    if language == "en" or not po.is_file():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=language)
    buffer = io.BytesIO()
    # Fuzzy entries are guesses pybabel made on update: never shown until a person checks.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer)


def gettext_for(language: str) -> Callable[[str], str]:
    """``gettext`` of ``language``: for words put together in Python (errors, history)."""
    return translations(language).gettext


def supported(language: str | None) -> str | None:
    """``language`` as one of ``LANGUAGES`` (``fr-CA`` is ``fr``), or None."""
    if not language:
        return None
    base = language.replace("_", "-").split("-")[0].strip().lower()
    return base if base in LANGUAGES else None


def from_accept_language(header: str) -> str | None:
    """The best of ``LANGUAGES`` for an ``Accept-Language`` header, or None."""
    wanted: list[tuple[float, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            # Stable: among equal qualities the header's order decides.
            wanted.append((-quality, f"{position:04d}{tag.strip()}"))
    tags = [tag[4:] for _, tag in sorted(wanted)]
    # Babel takes "fr-CA" as "fr" when only "fr" is there.
    return supported(negotiate_locale(tags, list(LANGUAGES), sep="-"))


def choose(request: Request, account_language: Callable[[], str], default: str) -> str:
    """The language of this request's page (the module's docstring says the order).
    ``account_language`` is asked only when no choice was made in the switcher."""
    return (
        supported(request.cookies.get(COOKIE))
        or supported(account_language())
        or from_accept_language(request.headers.get("accept-language", ""))
        or supported(default)
        or "en"
    )


@cache
def locale(language: str) -> Locale:
    return Locale.parse(language)
