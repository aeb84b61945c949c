"""Keep the portal's catalogs in step with the code: ``python3 -m mailgate.web.catalogs``.

It extracts every translatable string (``babel.cfg`` says where: the web code and the
page templates, plus the write side's error messages) with Babel, merges them into
``mailgate/locale/<language>/LC_MESSAGES/messages.po`` the way ``pybabel update`` does
(new strings arrive untranslated, vanished ones are dropped), writes the files and lists
what still needs a translator. ``--check`` writes nothing and exits 1 when a catalog
lacks a string: ``tests/test_i18n.py`` runs the same check, so a string added without its
French and Spanish fails CI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from mailgate.web.i18n import LANGUAGES, LOCALES

ROOT = Path(__file__).resolve().parents[2]
# Errors the write side raises are shown on pages: their first argument is the msgid
# (core/errors.py keeps its parameters apart so the words can be translated).
KEYWORDS = {**DEFAULT_KEYWORDS, "InvalidValue": None, "ActionRefused": None}


def extract(root: Path = ROOT) -> Catalog:
    """Every msgid in the code and templates, with where it is used."""
    with (root / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)  # type: ignore[no-untyped-call]
    template = Catalog(project="mailgate", msgid_bugs_address="", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        root, method_map, options_map, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)
    ):
        template.add(
            message,
            None,
            [(filename, lineno)],
            auto_comments=comments,
            context=context,
        )
    return template


def _po_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / "messages.po"


def load(language: str) -> Catalog:
    path = _po_path(language)
    if not path.is_file():
        return Catalog(locale=language, project="mailgate", fuzzy=False)
    with path.open("rb") as f:
        return read_po(f, locale=language)


def untranslated(catalog: Catalog, template: Catalog) -> list[str]:
    """The msgids of ``template`` that ``catalog`` lacks, leaves empty or marks fuzzy."""
    missing = []
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id, message.context)
        strings = found.string if found is not None else ""
        filled = all(strings) if isinstance(strings, tuple) else bool(strings)
        if found is None or not filled or found.fuzzy:
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def problems(catalog: Catalog) -> list[str]:
    """Placeholders a translation lost or invented (Babel's python-format checker)."""
    return [
        f"{message.id!r}: {error}"
        for message, errors in catalog.check()
        for error in errors
        if message.id
    ]


def update(languages: Iterable[str] = LANGUAGES[1:]) -> dict[str, list[str]]:
    """Merge the extracted strings into each catalog and write it; what is left to do."""
    template = extract()
    left: dict[str, list[str]] = {}
    for language in languages:
        catalog = load(language)
        catalog.update(template, no_fuzzy_matching=True)
        path = _po_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            write_po(f, catalog, width=100, omit_header=False, sort_output=False)
        written = load(language)  # checked as read back, the way the portal reads it
        left[language] = untranslated(written, template) + problems(written)
    return left


def check(languages: Iterable[str] = LANGUAGES[1:]) -> dict[str, list[str]]:
    """What each catalog lacks, writing nothing."""
    template = extract()
    catalogs = {language: load(language) for language in languages}
    return {
        language: untranslated(catalog, template) + problems(catalog)
        for language, catalog in catalogs.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m mailgate.web.catalogs", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a string lacks a translation"
    )
    args = parser.parse_args(argv)
    left = check() if args.check else update()
    for language, items in left.items():
        for item in items:
            print(f"{_po_path(language).relative_to(ROOT)}: {item}")
    print("; ".join(f"{language}: {len(items)} to translate" for language, items in left.items()))
    return 1 if any(left.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
