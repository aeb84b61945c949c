"""The folders are the layers, and the write side is the only writer of tickets.

The layer order and the private outbox are import-linter contracts in pyproject.toml;
what an import contract cannot see (a ticket field assigned, a Ticket or Notice row
built, an UPDATE on the tickets table) is checked here over the source's syntax tree.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from mailgate.db.models import Ticket

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "mailgate"
TICKET_FIELDS = frozenset(c.key for c in Ticket.__table__.columns)
# The `lint-imports` console script, run with this interpreter (no PATH assumptions).
LINT_IMPORTS = (
    "import sys; from importlinter.cli import lint_imports_command as c; "
    "sys.exit(c.main(standalone_mode=False))"
)


def test_import_contracts_hold() -> None:
    """`lint-imports` keeps every contract: layers one way, core without I/O, private outbox."""
    result = subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _writes_outside_the_write_side(package: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.is_relative_to(package / "tickets") or "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(package.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for attr in ast.walk(target):
                        if (
                            isinstance(attr, ast.Attribute)
                            and attr.attr in TICKET_FIELDS
                            and isinstance(attr.value, ast.Name)
                            and "ticket" in attr.value.id.lower()
                        ):
                            found.append(f"{where}:{node.lineno}: sets {attr.value.id}.{attr.attr}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                args = [a.id for a in node.args if isinstance(a, ast.Name)]
                if node.func.id in ("Ticket", "Notice"):
                    found.append(f"{where}:{node.lineno}: builds a {node.func.id} row")
                if node.func.id in ("update", "insert", "delete") and "Ticket" in args:
                    found.append(f"{where}:{node.lineno}: {node.func.id}(Ticket)")
    return found


def test_only_the_write_side_changes_tickets_and_writes_notices() -> None:
    """No module outside mailgate/tickets/ sets a ticket field, builds a Ticket or Notice
    row, or runs an UPDATE/INSERT/DELETE on the tickets table (DESIGN invariant 9)."""
    assert _writes_outside_the_write_side() == []


def test_the_check_sees_a_stray_write(tmp_path: Path) -> None:
    """The syntax check above does find a ticket write when there is one (in a copy of
    a package, not in the real tree, which another test process may be reading)."""
    web = tmp_path / "mailgate" / "web"
    web.mkdir(parents=True)
    (web / "stray.py").write_text("def f(ticket):\n    ticket.status = 'Open'\n")
    (tmp_path / "mailgate" / "tickets").mkdir()
    (tmp_path / "mailgate" / "tickets" / "allowed.py").write_text("ticket.status = 'x'\n")
    assert _writes_outside_the_write_side(tmp_path / "mailgate") == [
        "mailgate/web/stray.py:2: sets ticket.status"
    ]
