"""Mailgate's migration scripts (``db/migrations``): Alembic's view of them, and their
head read without Alembic.

Alembic (with Mako and Pygments) is imported only to migrate, stamp or report: a start
on an up-to-date database does not need it, and importing it took a tenth of every
`mailgate` process's start.
"""

from __future__ import annotations

import functools
import re
from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(files("mailgate") / "db" / "migrations"))
    return cfg


@functools.cache
def scripts() -> ScriptDirectory:
    # Reading the revision files costs milliseconds, and every store asks for the head;
    # the files do not change while a process runs.
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


_REVISION = re.compile(r"^revision\b[^=\n]*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=\n]*=(.*)$", re.MULTILINE)


@functools.cache
def head_from_files() -> str | None:
    """The head revision read straight from the scripts' ``revision`` and
    ``down_revision`` lines, without Alembic: the one revision no other script follows.

    None when a script is not understood or there is not exactly one head; the caller
    then asks Alembic. tests/test_migrations.py checks it agrees with Alembic.
    """
    revisions: set[str] = set()
    followed: set[str] = set()
    for script in (files("mailgate") / "db" / "migrations" / "versions").iterdir():
        if not script.name.endswith(".py"):
            continue
        source = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        followed.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    heads = revisions - followed
    return heads.pop() if len(heads) == 1 else None
