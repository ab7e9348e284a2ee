"""``mailroom settings …`` and ``mailroom properties …``: typed views and raw properties."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from services.config.cli.common import (
    WHO,
    JsonOpt,
    console,
    loaded_config,
    parse_value,
    print_rows,
    run_with,
)
from services.config.properties import list_properties, set_fields, set_property
from shared.config_views import FIELD_MODULES

settings_app = typer.Typer(help="Settings, addresses, processor scripts.", no_args_is_help=True)
properties_app = typer.Typer(help="Raw system properties.", no_args_is_help=True)

MODULE_HELP = "settings, addresses, processor or conversation"


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
) -> None:
    """Set keys of a module together (they are validated together)."""
    values: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE")
        values[key] = parse_value(value)
    version = run_with(
        lambda rt: set_fields(rt, module=module, values=values, who=WHO), broker=True
    )
    console.print(f"saved, configuration version {version}")


@properties_app.command("list")
def properties_list(as_json: JsonOpt = False) -> None:
    """List every raw property (secrets as ***)."""
    props = run_with(list_properties)
    print_rows(props, ("module", "key", "value", "version", "updated_by"), as_json, "Properties")


@properties_app.command("set")
def properties_set(module: str, key: str, value: str) -> None:
    """Set one raw property (VALUE as JSON or text)."""
    version = run_with(
        lambda rt: set_property(rt, module=module, key=key, value=parse_value(value), who=WHO),
        broker=True,
    )
    console.print(f"saved, configuration version {version}")
