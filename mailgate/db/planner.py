"""Conditions told to SQLite's query planner for what they are.

SQLite plans from ``sqlite_stat1`` once an operator has run ANALYZE (or ``PRAGMA
optimize``), and that table holds averages only: a ticket's status, a notice's state,
a message's state each have a handful of values, so SQLite takes any one of them to
hold for a large share of the rows. The ones mailgate asks for hold for few: the open
tickets, the pending notices, the messages waiting. With those averages SQLite read the
whole notices table (5 million rows, 1.6 s) to find none due, and the whole assignee
index for the queue's counts (53 ms instead of 4 at a million tickets). ``rare`` says
so to SQLite (``likelihood``), which then keeps to the index on the state, as it does
with no statistics; other databases get the condition as it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

# The share of rows SQLite is told a rare condition holds for.
RARE = 0.001


def rare(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """``condition``, which holds for few rows (the module's docstring)."""
    return _Rare(condition)


class _Rare(FunctionElement[Any]):
    name = "rare"
    inherit_cache = True


@compiles(_Rare)
def _as_it_is(element: _Rare, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)})"


@compiles(_Rare, "sqlite")
def _likelihood(element: _Rare, compiler: SQLCompiler, **kw: Any) -> str:
    # Written into the statement: SQLite refuses a parameter for the likelihood. And
    # no type for the whole: a Boolean would be compared with 1, hiding the condition
    # from the planner again.
    return f"likelihood({compiler.process(element.clauses, **kw)}, {RARE})"
