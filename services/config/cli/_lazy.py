"""Commands loaded when they are run: ``mailroom --help`` imports no command module.

Each command group is named with its module and a one-line help for the top-level listing;
the module (and whatever it imports: PyMongo, FastStream, the services) is imported only when
that command is chosen, so every call pays only for its own command. The group is also the
one place a command's failure becomes the one-line answer (see ``common.fail``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from services.config.cli.common import fail

# Typer's click is vendored; these are the context and command types its classes take.
Context = Any
Command = Any


@dataclass(frozen=True)
class Lazy:
    """A command (a function) or command group (a ``typer.Typer``) at ``module:attribute``,
    with the help the top-level listing shows before it is loaded."""

    target: str
    help: str

    def load(self, name: str) -> Command:
        """Import the module and build the click command typer would have built."""
        module, _, attribute = self.target.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        # A callback makes typer build a group even around one command, so the command
        # comes out exactly as ``add_typer``/``command`` would register it.
        outer = typer.Typer()
        outer.callback()(_nothing)
        if isinstance(found, typer.Typer):
            outer.add_typer(found, name=name)
        else:
            outer.command(name)(found)
        return typer.main.get_command(outer).commands[name]  # type: ignore[attr-defined]

    def placeholder(self, name: str) -> Command:
        """What ``--help`` lists until the command is chosen."""
        # As short help too: click would cut the listing's line at its own length.
        return TyperCommand(name, help=self.help, short_help=self.help)


def _nothing() -> None:
    """The throwaway callback of :meth:`Lazy.load`."""


def lazy_group(entries: Mapping[str, Lazy]) -> type[TyperGroup]:
    """The click group class of the ``mailroom`` app: ``entries`` loaded when chosen, and
    any failure of a command answered in one line (the traceback only with --debug)."""

    class LazyGroup(TyperGroup):
        def __init__(self, **attrs: Any) -> None:
            super().__init__(**attrs)
            self._placeholders = {name: entry.placeholder(name) for name, entry in entries.items()}
            for name, shown in self._placeholders.items():
                self.commands.setdefault(name, shown)

        def resolve_command(
            self, ctx: Context, args: list[str]
        ) -> tuple[str | None, Command | None, list[str]]:
            name = args[0] if args else ""
            if name in entries and self.commands.get(name) is self._placeholders[name]:
                self.commands[name] = entries[name].load(name)
            return super().resolve_command(ctx, args)

        def invoke(self, ctx: Context) -> Any:
            try:
                return super().invoke(ctx)
            except (typer.Exit, typer.Abort, typer.TyperException):
                raise
            except Exception as exc:
                where = " ".join(filter(None, (ctx.command_path, ctx.invoked_subcommand)))
                raise fail(exc, where=where) from None

    return LazyGroup
