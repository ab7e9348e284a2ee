"""``mailroom settings …`` and ``mailroom properties …``: typed views and raw properties.

A write to a list setting first prints what it changes (added, removed, changed, reordered
items): such a list is written whole, so one entry given replaces all the others. A write a
guard refuses (no incoming script left that puts mail into cases) is written only with
``--force``, and audited as forced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from services.config.catalogue import (
    PropertyState,
    get_catalogued,
    list_catalogue,
    reset_catalogued,
    set_catalogued,
)
from services.config.cli.common import (
    WHO,
    JsonOpt,
    console,
    loaded_config,
    parse_value,
    print_rows,
    read_secret,
    run_with,
)
from services.config.list_diff import planned_list_changes
from services.config.properties import list_properties, set_fields
from shared.config_views import FIELD_MODULES
from shared.runtime import Runtime

settings_app = typer.Typer(help="Settings, addresses, processor scripts.", no_args_is_help=True)
properties_app = typer.Typer(help="Raw system properties.", no_args_is_help=True)

MODULE_HELP = "settings, addresses, processor or conversation"
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Write a change a guard refuses (e.g. no script left that puts mail into cases); "
        "the audit record says it was forced.",
    ),
]


def show_list_changes(rt: Runtime, module: str, values: Mapping[str, Any]) -> None:
    """Print what writing ``values`` into ``module`` does to its list settings."""
    for change in planned_list_changes(rt.config, module, values):
        for line in change.lines():
            console.print(line, highlight=False, markup=False)


def saved(version: int, force: bool) -> str:
    """The line that confirms a write."""
    return f"saved{' (forced)' if force else ''}, configuration version {version}"


@settings_app.command("show")
def settings_show(
    module: Annotated[str, typer.Argument(help=MODULE_HELP)] = "settings",
) -> None:
    """Show a typed view with its defaults filled in (always JSON)."""
    config = run_with(loaded_config)
    if module not in FIELD_MODULES:
        raise typer.BadParameter(f"use one of {', '.join(FIELD_MODULES)}")
    typer.echo(json.dumps(getattr(config, module).model_dump(mode="json"), indent=2))


@settings_app.command("set")
def settings_set(
    module: Annotated[str, typer.Argument(help=MODULE_HELP)],
    assignments: Annotated[list[str], typer.Argument(help="KEY=VALUE (VALUE as JSON or text)")],
    force: ForceOpt = False,
) -> None:
    """Set keys of a module together (they are validated together). A list is replaced
    whole: what it adds, removes and reorders is printed first."""
    values: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE")
        values[key] = parse_value(value)

    async def work(rt: Runtime) -> int:
        show_list_changes(rt, module, values)
        return await set_fields(rt, module=module, values=values, who=WHO, force=force)

    console.print(saved(run_with(work, broker=True), force))


PROPERTY_COLUMNS = ("module", "key", "type", "value", "default", "is_set", "description")


def _shown(state: PropertyState) -> PropertyState:
    # A table cell for a secret says whether it is set; its value is never known here.
    if state.secret:
        return state.model_copy(update={"value": "(set)" if state.secret_set else "(not set)"})
    return state


@properties_app.command("list")
def properties_list(
    module: Annotated[str | None, typer.Option(help="Only this module.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every property with its type, default, description and value (secrets: set or not)."""
    rows = run_with(lambda rt: list_catalogue(rt, module=module))
    shown = rows if as_json else [_shown(r) for r in rows]
    print_rows(shown, PROPERTY_COLUMNS, as_json, "Properties")


@properties_app.command("get")
def properties_get(module: str, key: str) -> None:
    """One property (JSON)."""
    state = run_with(lambda rt: get_catalogued(rt, module=module, key=key))
    typer.echo(state.model_dump_json(indent=2))


@properties_app.command("set")
def properties_set(
    module: str,
    key: str,
    value: Annotated[str | None, typer.Argument(help="JSON or text")] = None,
    value_stdin: Annotated[
        bool, typer.Option(help="Read the value from stdin (for secrets).")
    ] = False,
    force: ForceOpt = False,
) -> None:
    """Set one property (VALUE as JSON or text; a secret with --value-stdin). A list is
    replaced whole: what it adds, removes and reorders is printed first."""
    if (value is None) == (not value_stdin):
        raise typer.BadParameter("give VALUE or --value-stdin")
    parsed = parse_value(value) if value is not None else read_secret(True)

    async def work(rt: Runtime) -> int:
        show_list_changes(rt, module, {key: parsed})
        return await set_catalogued(rt, module=module, key=key, value=parsed, who=WHO, force=force)

    console.print(saved(run_with(work, broker=True), force))


@properties_app.command("reset")
def properties_reset(module: str, key: str, force: ForceOpt = False) -> None:
    """Put one property back to its default."""
    version = run_with(
        lambda rt: reset_catalogued(rt, module=module, key=key, who=WHO, force=force),
        broker=True,
    )
    console.print(f"{module}/{key} is at its default, configuration version {version}")


@properties_app.command("raw")
def properties_raw(as_json: JsonOpt = False) -> None:
    """Every stored property as stored (secrets as ***)."""
    props = run_with(list_properties)
    print_rows(props, ("module", "key", "value", "version", "updated_by"), as_json, "Properties")
