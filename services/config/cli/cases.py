"""``mailroom cases …``: the cases, read-only."""

from __future__ import annotations

import json

import typer

from services.config.cli.common import JsonOpt, print_rows, run_with
from shared.errors import NotFound
from shared.models.records import CaseMessage
from shared.runtime import Runtime

app = typer.Typer(help="Cases (read-only).", no_args_is_help=True)


@app.command("list")
def cases_list(as_json: JsonOpt = False) -> None:
    """The newest cases."""
    cases = run_with(lambda rt: rt.store.cases.recent())
    print_rows(cases, ("number", "subject", "status", "created_at"), as_json, "Cases")


@app.command("show")
def cases_show(number: int) -> None:
    """A case's mails (JSON); a case that does not exist is an error (exit 1)."""

    async def work(rt: Runtime) -> list[CaseMessage]:
        if await rt.store.cases.get(number=number) is None:
            raise NotFound(f"no case {number}")
        return await rt.store.cases.messages(case_number=number)

    messages = run_with(work)
    typer.echo(json.dumps([m.model_dump(mode="json", by_alias=True) for m in messages], indent=2))
