"""``mailroom simulate``: the processor's dry run on one mail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from services.config.cli.common import JsonOpt, console, run_with


def simulate(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .eml file")],
    as_json: JsonOpt = False,
) -> None:
    """Parse a mail and run every incoming-mail script as a dry run; changes nothing."""
    from services.processor.simulate import StoreCaseLookup, StoreMarks
    from services.processor.simulate import simulate as dry_run

    data = path.read_bytes()
    result = run_with(
        lambda rt: dry_run(
            data,
            config=rt.config,
            cases=StoreCaseLookup(rt.store.cases),
            marks=StoreMarks(rt.store),
        )
    )
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    decision = result["decision"]
    if "subject" in result:  # absent when the mail does not parse (then "error" says why)
        console.print(f"[bold]{result['subject']}[/bold]", highlight=False)
        console.print(f"classification: {result['classification']}", highlight=False)
    # A rejection or an unparseable mail has no matching rule: its reason says who decided.
    rule = f" (rule {decision['rule']})" if decision.get("rule") else ""
    console.print(
        f"decision: {decision['action']}{rule}: {decision['reason']}",
        highlight=False,
    )
    for note in result.get("notes", []):
        console.print(f"note: {note}", highlight=False)
    for finding in result.get("findings", []):
        console.print(f"{finding['kind']}: {finding['reason']}", highlight=False)
