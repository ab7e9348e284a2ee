"""``mailroom failed …``: the failed-mail desk."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from services.config.api.schemas import FailedMailPublic
from services.config.cli.common import WHO, JsonOpt, console, print_rows, run_with
from services.config.cli.model_options import model_options
from shared.models.desk import DeskFilter

# services.config.desk (the replay machinery: FastStream, the parser) is imported by the
# commands that use it, so `failed list` starts fast.

app = typer.Typer(help="The failed-mail desk.", no_args_is_help=True)

FAILED_COLUMNS = ("id", "account", "sender", "error", "attempts", "last_failed_at", "status")
LimitOpt = Annotated[int, typer.Option(min=1, max=1000, help="At most this many entries.")]


@app.command("list")
@model_options(DeskFilter)
def failed_list(filter: DeskFilter, limit: LimitOpt = 100, as_json: JsonOpt = False) -> None:
    """List and search failed mails, most recent first."""
    entries = run_with(lambda rt: rt.store.desk.search(filter=filter, limit=limit))
    print_rows([FailedMailPublic.of(e) for e in entries], FAILED_COLUMNS, as_json, "Failed mails")


@app.command("count")
@model_options(DeskFilter, exclude={"status"})
def failed_count(filter: DeskFilter) -> None:
    """Count the failed mails matching the filter (what replay --all would replay)."""
    from services.config import desk

    typer.echo(run_with(lambda rt: desk.count_matching(rt, filter=filter)))


@app.command("show")
def failed_show(
    failed_id: str,
    raw: Annotated[bool, typer.Option("--raw", help="Print the mail as fetched.")] = False,
    parsed: Annotated[bool, typer.Option("--parsed", help="Print the parsed mail.")] = False,
) -> None:
    """Show one failed mail (JSON), its raw form or its parsed form."""
    from services.config import desk

    if raw:
        data = run_with(lambda rt: desk.raw_of(rt, failed_id=failed_id))
        sys.stdout.buffer.write(data)
        return
    if parsed:
        result = run_with(lambda rt: desk.parsed_of(rt, failed_id=failed_id))
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    entry = run_with(lambda rt: rt.store.desk.get(failed_id=failed_id))
    typer.echo(FailedMailPublic.of(entry).model_dump_json(indent=2))


@app.command("replay")
@model_options(DeskFilter, exclude={"status"})
def failed_replay(
    filter: DeskFilter,
    failed_id: Annotated[str | None, typer.Argument()] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Replay every failed mail matching the filter.")
    ] = False,
) -> None:
    """Replay one failed mail, or all (optionally filtered) with --all."""
    from services.config import desk

    if (failed_id is None) == (not all_):
        raise typer.BadParameter("give one ID or --all")
    if failed_id is not None:
        one = failed_id
        results = [run_with(lambda rt: desk.replay(rt, failed_id=one, who=WHO), broker=True)]
    else:
        results = run_with(lambda rt: desk.replay_all(rt, who=WHO, filter=filter), broker=True)
    for r in results:
        console.print(f"{r.failed_id}: {r.note}", highlight=False)
    console.print(f"{sum(r.replayed for r in results)} replayed")


@app.command("delete")
def failed_delete(failed_id: str) -> None:
    """Take a failed mail off the desk (the raw mail stays stored; audited)."""
    from services.config import desk

    deleted = run_with(lambda rt: desk.delete(rt, failed_id=failed_id, who=WHO))
    console.print(f"{failed_id}: {'deleted' if deleted else 'already deleted'}")
