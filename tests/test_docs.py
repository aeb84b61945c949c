"""The docs/ folder stands alone: the generated pages match the code, and every link holds.

docs/configuration.md and docs/cli.md are written by docs/gen.py from the settings'
dataclasses, config.example.toml and the click command tree. A new key or option without
`python3 -m docs.gen` fails here, as does a relative link to a file that is not there.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# An inline link or image: [text](target) or ![alt](target "title").
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_CODE_SPAN = re.compile(r"`[^`\n]*`")


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    """docs/gen.py, loaded by path (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("mailgate_docs_gen", DOCS / "gen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_generated_pages_match_the_code(gen: ModuleType) -> None:
    """Regenerating configuration.md and cli.md gives exactly the committed files."""
    for path, text in gen.render().items():
        committed = path.read_text(encoding="utf-8") if path.exists() else ""
        assert committed == text, (
            f"{path.relative_to(REPO)} is out of date: run `python3 -m docs.gen` "
            "from the repository root and commit the result"
        )


def _links(markdown: str) -> list[str]:
    """Link targets outside code blocks and code spans."""
    prose = _CODE_SPAN.sub("", _FENCE.sub("", markdown))
    return _LINK.findall(prose)


def _pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped,
    spaces as hyphens, ``-1``, ``-2`` … for repeats."""
    anchors: set[str] = set()
    repeats: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", _FENCE.sub("", markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = repeats.get(slug, 0)
        repeats[slug] = n + 1
        anchors.add(f"{slug}-{n}" if n else slug)
    return anchors


def test_every_relative_link_points_to_a_file() -> None:
    """Each relative link in docs/*.md names a file or folder of this repository, and an
    anchor on a Markdown page names one of its headings."""
    assert _pages(), "docs/ has no pages"
    broken = []
    for page in _pages():
        for target in _links(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # a URL: https:, mailto:
            name, _, anchor = target.partition("#")
            path = (page.parent / name).resolve() if name else page
            if not path.exists() or not path.is_relative_to(REPO):
                broken.append(f"{page.name}: {target}")
            elif (
                anchor
                and path.suffix == ".md"
                and anchor not in _anchors(path.read_text(encoding="utf-8"))
            ):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "links to nothing in this repository: " + ", ".join(broken)


def test_files_named_in_the_docs_exist() -> None:
    """A file or folder the pages name in code (`tests/test_smtp.py`, `inbound/smtp/`)
    exists, in the repository or, for module paths, under mailgate/: tests move."""
    named = re.compile(r"^\w[\w.-]*(/[\w.-]+)*(\.(py|toml|md|service)|/)$")
    missing = []
    for page in _pages():
        spans = re.findall(r"`([^`\n]+)`", _FENCE.sub("", page.read_text(encoding="utf-8")))
        missing += [
            f"{page.name}: {span}"
            for span in spans
            if named.match(span) and "/" in span
            # What a test run writes (ignored by git): absent until the portal's tests ran.
            if not span.startswith("tests/artifacts/")
            if not any((root / span).exists() for root in (REPO, REPO / "mailgate"))
        ]
    assert not missing, "named but not there: " + ", ".join(missing)


def test_the_index_links_to_every_page() -> None:
    """docs/README.md lists every page of docs/."""
    index = DOCS / "README.md"
    linked = {(DOCS / t.split("#", 1)[0]).resolve() for t in _links(index.read_text())}
    missing = [p.name for p in _pages() if p != index and p.resolve() not in linked]
    assert not missing, f"docs/README.md does not link to {', '.join(missing)}"


def test_link_finder_sees_links_and_skips_code() -> None:
    """The link check itself: it finds inline links and images, not examples in code."""
    text = (
        "See [design](design.md#flow) and ![logo](img/logo.png).\n"
        "`[not](a-link.md)`\n"
        "```\n[nor](this.md)\n```\n"
        '[titled](cli.md "the CLI")\n'
    )
    assert _links(text) == ["design.md#flow", "img/logo.png", "cli.md"]


def test_anchors_follow_github() -> None:
    """Headings become the anchors GitHub makes of them, repeats numbered."""
    text = "# Design\n## `[outbound.smtp]`\n## Sender authentication (DMARC)\n## Design\n"
    assert _anchors(text) == {"design", "outboundsmtp", "sender-authentication-dmarc", "design-1"}
