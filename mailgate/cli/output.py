"""Listings as JSON for scripts or as aligned columns for people."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def limit_option(noun: str, default: int = 50) -> Callable[[F], F]:
    """``--limit N`` for a listing: newest N, 0 for all; negative numbers are refused."""
    return click.option(
        "--limit",
        default=default,
        show_default=True,
        type=click.IntRange(min=0),
        help=f"Newest N {noun}; 0 for all.",
    )


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def emit_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], empty: str
) -> None:
    """``columns`` are (field, heading) pairs; long cells are cut to keep one line per row."""
    if not rows:
        click.echo(empty)
        return
    cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [
        min(40, max(len(heading), *(len(r[i]) for r in cells)))
        for i, (_, heading) in enumerate(columns)
    ]
    click.echo("  ".join(h.ljust(w) for (_, h), w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        click.echo("  ".join(c[:w].ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    text = str(value)
    return text[:10] + " " + text[11:16] if len(text) > 19 and text[10:11] == "T" else text
