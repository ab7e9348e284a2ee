"""The ``mailroom`` command table: every entry loads, and the help ``mailroom --help`` lists
before loading is the command's own."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.config.cli import COMMANDS


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_loads_with_the_help_listed_for_it(name: str) -> None:
    command = COMMANDS[name].load(name)
    assert command.name == name
    own_help = " ".join((command.help or "").split("\n\n")[0].split())
    assert own_help == COMMANDS[name].help, f"update the help of {name!r} in COMMANDS"


def test_help_imports_no_command_module_nor_rich() -> None:
    probe = (
        "import sys\n"
        "from services.config.cli import app\n"
        "sys.argv = ['mailroom', '--help']\n"
        "try:\n"
        "    app()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('pymongo', 'faststream', 'fastapi', 'jinja2', 'pydantic', 'rich',\n"
        "         'shared.store', 'services.config.cli.')\n"
        "mine = ('services.config.cli.common', 'services.config.cli._lazy')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy) and m not in mine))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
