"""``mailroom suppressions``: addresses that get no automatic mail (list, add, remove)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from services.config.cli.common import WHO, JsonOpt, console, run_with, table
from services.config.suppressions import (
    SuppressionAdd,
    add_suppression,
    list_suppressions,
    remove_suppression,
)

app = typer.Typer(help="Addresses that get no automatic mail (spam complaints put them there).")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List the suppressed addresses, newest first, with reason and source."""
    rows = run_with(list_suppressions)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    shown = table("Suppressed addresses", ("address", "since", "source", "reason"))
    for row in rows:
        shown.add_row(row.address, row.created_at.isoformat(), row.source, row.reason)
    console.print(shown)


@app.command()
def add(
    address: Annotated[str, typer.Argument(help="The address to suppress")],
    reason: Annotated[str, typer.Option(help="Why")] = "added by an operator",
) -> None:
    """Suppress an address: no automatic mail to it from now on."""
    entry = SuppressionAdd(address=address, reason=reason)
    run_with(lambda rt: add_suppression(rt, entry=entry, by=WHO))
    console.print(f"{address} suppressed", highlight=False)


@app.command()
def remove(address: Annotated[str, typer.Argument(help="The address to take off")]) -> None:
    """Take an address off the list: automatic mail to it resumes."""
    run_with(lambda rt: remove_suppression(rt, address=address))
    console.print(f"{address} is no longer suppressed", highlight=False)
