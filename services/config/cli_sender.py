"""``mailroom archive …``, ``mailroom outgoing test|auth``: the sender's commands, registered by
``cli``.

The shared helpers of ``services.config.cli`` are imported inside the commands: that module
imports this one at its end, so a module-level import here would be circular.
"""

from __future__ import annotations

from typing import Annotated

import typer

from services.config.api.routes.archive import ArchivedMailPublic, ArchivedMailSummary
from shared.models.records import ArchivedMail
from shared.runtime import Runtime

archive_app = typer.Typer(
    help="The test archive: outgoing mail kept instead of sent on test systems.",
    no_args_is_help=True,
)

ARCHIVE_COLUMNS = ("id", "case_number", "kind", "to", "subject", "flavour", "intercepted_at")


@archive_app.command("list")
def archive_list(
    case: Annotated[int | None, typer.Option(help="Only mail of this case.")] = None,
    to: Annotated[str | None, typer.Option(help="Only mail to this address.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List intercepted mails, newest first."""
    from services.config.cli import _print, _run

    async def work(rt: Runtime) -> list[ArchivedMail]:
        return await rt.store.test_archive.recent(case_number=case, to=to, limit=limit)

    rows = [ArchivedMailSummary.of(m) for m in _run(work)]
    _print(rows, ARCHIVE_COLUMNS, as_json, "Test archive")


@archive_app.command("show")
def archive_show(
    mail_id: str,
    raw: Annotated[bool, typer.Option("--raw", help="Print the raw message only.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default).")] = True,
) -> None:
    """Show one intercepted mail (JSON), or with --raw the message as it would have gone out."""
    from services.config.cli import _run

    async def work(rt: Runtime) -> ArchivedMail:
        return await rt.store.test_archive.get(mail_id=mail_id)

    mail = ArchivedMailPublic.of(_run(work))
    typer.echo(mail.raw if raw else mail.model_dump_json(indent=2, by_alias=True))


def outgoing_test(
    to: Annotated[
        str | None, typer.Option("--to", help="Also send a test mail to this address.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Test the outgoing connection: connect, TLS, login, and optionally a test mail."""
    from services.config.api.routes.outgoing_test import OutgoingTestOut
    from services.config.cli import _run, console
    from services.sender.probe import ProbeReport, probe
    from services.sender.smtp import effective_connection
    from shared.errors import NotFound

    async def work(rt: Runtime) -> ProbeReport:
        config = rt.config
        connection = effective_connection(config)
        if connection is None:
            raise NotFound("no outgoing connection is configured; use `mailroom outgoing set`")
        return await probe(connection, config, send_to=to)

    report = OutgoingTestOut.of(_run(work))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        for step in report.steps:
            console.print(f"[green]ok[/green] {step}", highlight=False)
        if report.test_mail:
            console.print(f"test mail: {report.test_mail}", highlight=False)
        if report.intercepted:
            console.print(
                "[yellow]note[/yellow] outgoing mail is intercepted: the system flavour is a "
                "test-archive flavour, mail goes to the test archive (`mailroom archive list`)",
                highlight=False,
            )
        if report.error:
            console.print(f"[red]failed[/red] {report.error}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


def outgoing_auth(
    basic: Annotated[bool, typer.Option("--basic", help="Username and password.")] = False,
    oauth2: Annotated[bool, typer.Option("--oauth2", help="OAuth 2.0 (XOAUTH2).")] = False,
    same_as: Annotated[
        str | None, typer.Option("--same-as", help="Use this incoming account's credentials.")
    ] = None,
    username: Annotated[str | None, typer.Option()] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
    client_id: Annotated[str | None, typer.Option()] = None,
    client_secret_stdin: Annotated[
        bool, typer.Option(help="Read the OAuth client secret from stdin.")
    ] = False,
    authority: Annotated[str | None, typer.Option(help="https://…/<tenant>")] = None,
    scope: Annotated[str | None, typer.Option()] = None,
    oauth_ca_file: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Choose how the outgoing connection logs in (secrets from stdin, never arguments)."""
    from services.config.api.schemas import OutgoingPublic
    from services.config.cli import OUTGOING_COLUMNS, WHO, _password, _print, _run
    from services.config.properties import set_outgoing

    if [basic, oauth2, same_as is not None].count(True) != 1:
        raise typer.BadParameter("give exactly one of --basic, --oauth2, --same-as ACCOUNT")
    fields: dict[str, object]
    if same_as is not None:
        fields = {"credentials_from": same_as}
    elif basic:
        fields = {"auth": "basic", "username": username, "password": _password(password_stdin)}
    else:
        fields = {
            "auth": "oauth2",
            "username": username,
            "client_id": client_id,
            "client_secret": _password(client_secret_stdin),
            "authority": authority,
            "scope": scope,
            "oauth_ca_file": oauth_ca_file,
        }
    conn = _run(lambda rt: set_outgoing(rt, fields=fields, who=WHO), broker=True)
    columns = (*OUTGOING_COLUMNS, "auth", "client_id", "client_secret_set", "credentials_from")
    _print([OutgoingPublic.of(conn)], columns, False, "Outgoing connection")
