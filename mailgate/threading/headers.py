"""Subject tags, read from header text."""

from __future__ import annotations

import re


def subject_tag_pattern(prefix: str) -> re.Pattern[str]:
    """The ``[<prefix><number>]`` tag, e.g. ``[#123]`` for prefix ``#``."""
    return re.compile(r"\[\s*" + re.escape(prefix) + r"\s*(\d{1,12})\s*\]")


def find_subject_tag(subject: str, prefix: str) -> int | None:
    """The ticket number tagged in ``subject``, or None."""
    match = subject_tag_pattern(prefix).search(subject)
    return int(match.group(1)) if match else None
