"""``mailroom archive …``: the test archive, outgoing mail kept instead of sent on test
systems."""

from __future__ import annotations

from typing import Annotated

import typer

from services.config.api.schemas import ArchivedMailPublic, ArchivedMailSummary
from services.config.cli.common import JsonOpt, print_rows, run_with
from shared.models.records import ArchivedMail
from shared.runtime import Runtime

app = typer.Typer(
    help="The test archive: outgoing mail kept instead of sent on test systems.",
    no_args_is_help=True,
)

ARCHIVE_COLUMNS = ("id", "case_number", "kind", "to", "subject", "flavour", "intercepted_at")


@app.command("list")
def archive_list(
    case: Annotated[int | None, typer.Option(help="Only mail of this case.")] = None,
    to: Annotated[str | None, typer.Option(help="Only mail to this address.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List intercepted mails, newest first."""

    async def work(rt: Runtime) -> list[ArchivedMail]:
        return await rt.store.test_archive.recent(case_number=case, to=to, limit=limit)

    rows = [ArchivedMailSummary.of(m) for m in run_with(work)]
    print_rows(rows, ARCHIVE_COLUMNS, as_json, "Test archive")


@app.command("show")
def archive_show(
    mail_id: str,
    raw: Annotated[bool, typer.Option("--raw", help="Print the raw message only.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default).")] = True,
) -> None:
    """Show one intercepted mail (JSON), or with --raw the message as it would have gone out."""

    async def work(rt: Runtime) -> ArchivedMail:
        return await rt.store.test_archive.get(mail_id=mail_id)

    mail = ArchivedMailPublic.of(run_with(work))
    typer.echo(mail.raw if raw else mail.model_dump_json(indent=2, by_alias=True))
