"""`mailgate --help` lists commands from a table instead of importing them all
(issue 23: start-up under 0.3 s). These tests keep that table true."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import click

import mailgate.cli
from mailgate.cli import _COMMANDS, cli, load_command


def _reachable(command: click.Command) -> set[int]:
    seen = {id(command)}
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            seen |= _reachable(sub)
    return seen


def test_each_listed_line_is_the_commands_own_short_help() -> None:
    # click's own width for the Commands section: 78 columns, less indent and names.
    limit = 78 - 6 - max(len(name) for name in _COMMANDS)
    for name, (_, _, short_help) in _COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        assert short_help == command.get_short_help_str(limit), name


def test_every_command_defined_in_the_cli_package_is_reachable() -> None:
    reachable: set[int] = set()
    for name in _COMMANDS:
        reachable |= _reachable(load_command(name))
    orphans = []
    for info in pkgutil.iter_modules(mailgate.cli.__path__):
        module = importlib.import_module(f"mailgate.cli.{info.name}")
        for attribute, value in vars(module).items():
            if isinstance(value, click.Command) and value is not cli and id(value) not in reachable:
                orphans.append(f"{info.name}.{attribute}")
    assert orphans == []


def test_unknown_command_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mailgate", "tikets", "list"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "No such command 'tikets'" in result.stderr


def test_help_imports_neither_the_database_nor_the_web_stack() -> None:
    probe = (
        "import sys\n"
        "from mailgate.cli import main\n"
        "sys.argv = ['mailgate', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'fastapi', 'mailparser', 'aiosmtpd', 'dramatiq')"
        " if m in sys.modules)\n"
        "print('heavy:', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], check=False, capture_output=True, text=True
    )
    assert "Commands:" in result.stdout
    assert "heavy: []" in result.stderr, result.stderr
