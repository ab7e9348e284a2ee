"""``mailroom scripts list|enable|disable|move``: the order and enablement of the incoming-mail
scripts (``--outgoing``: the outgoing-mail scripts)."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import BaseModel, ValidationError

from services.config.cli.common import WHO, JsonOpt, console, print_rows, run_with
from services.config.cli.settings import ForceOpt
from services.config.scripts import (
    KINDS,
    Placement,
    ScriptKind,
    ScriptList,
    enable_script,
    list_scripts,
    move_script,
)

app = typer.Typer(
    help="Incoming-mail scripts (--outgoing: outgoing-mail scripts): list, enable, disable, move.",
    no_args_is_help=True,
)

OutgoingOpt = Annotated[
    bool,
    typer.Option("--outgoing", help="The outgoing-mail scripts (sender/outgoing_scripts) instead."),
]
Name = Annotated[str, typer.Argument(help="The script's entry-point name, e.g. case_matcher.")]


class _Row(BaseModel):
    position: str
    name: str
    enabled: str
    package: str
    matches_cases: str


def _kind(outgoing: bool) -> ScriptKind:
    return KINDS["outgoing" if outgoing else "incoming"]


def _show(listing: ScriptList, as_json: bool) -> None:
    if as_json:
        print_rows(listing.scripts, (), True, "")
        return
    rows = [
        _Row(
            position=str(s.position) if s.position is not None else "-",
            name=s.name,
            enabled="yes" if s.enabled else "no",
            package=f"{s.package} {s.package_version}" if s.package else "(not installed)",
            matches_cases="yes" if s.matches_cases else "",
        )
        for s in listing.scripts
    ]
    columns = ["position", "name", "enabled", "package"]
    if listing.kind == "incoming":
        columns.append("matches_cases")
    print_rows(rows, columns, False, f"{listing.property} (version {listing.version})")
    if any(s.position is None for s in listing.scripts):
        console.print("position -: installed, not in the list, does not run", highlight=False)


@app.command("list")
def scripts_list(outgoing: OutgoingOpt = False, as_json: JsonOpt = False) -> None:
    """The scripts in the order they run: enabled or not, the package that installed them."""
    _show(run_with(lambda rt: list_scripts(rt, _kind(outgoing))), as_json)


def _enable(name: str, *, enabled: bool, outgoing: bool, force: bool, as_json: bool) -> None:
    listing = run_with(
        lambda rt: enable_script(rt, _kind(outgoing), name, enabled=enabled, who=WHO, force=force),
        broker=True,
    )
    _show(listing, as_json)


@app.command("enable")
def scripts_enable(
    name: Name, outgoing: OutgoingOpt = False, force: ForceOpt = False, as_json: JsonOpt = False
) -> None:
    """Enable a script (one installed but not listed is added at the bottom)."""
    _enable(name, enabled=True, outgoing=outgoing, force=force, as_json=as_json)


@app.command("disable")
def scripts_disable(
    name: Name, outgoing: OutgoingOpt = False, force: ForceOpt = False, as_json: JsonOpt = False
) -> None:
    """Disable a script; refused for the last one that puts mail into cases unless --force."""
    _enable(name, enabled=False, outgoing=outgoing, force=force, as_json=as_json)


@app.command("move")
def scripts_move(
    name: Name,
    before: Annotated[str | None, typer.Option(help="Run it just before this script.")] = None,
    after: Annotated[str | None, typer.Option(help="Run it just after this script.")] = None,
    top: Annotated[bool, typer.Option("--top", help="Run it first.")] = False,
    bottom: Annotated[bool, typer.Option("--bottom", help="Run it last.")] = False,
    outgoing: OutgoingOpt = False,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Move a script before or after another one, or to the top or bottom."""
    wrong = typer.BadParameter("give exactly one of --before, --after, --top, --bottom")
    if top and bottom:
        raise wrong
    try:
        place = Placement(
            before=before, after=after, to="top" if top else "bottom" if bottom else None
        )
    except ValidationError:
        raise wrong from None
    listing = run_with(
        lambda rt: move_script(rt, _kind(outgoing), name, place, who=WHO, force=force),
        broker=True,
    )
    _show(listing, as_json)
