"""``mailroom outgoing …``: the outgoing SMTP connection, its login and its test."""

from __future__ import annotations

from typing import Annotated

import typer

from services.config.api.schemas import OutgoingPublic
from services.config.cli.common import (
    WHO,
    JsonOpt,
    VerifyTlsOpt,
    console,
    loaded_config,
    print_rows,
    read_secret,
    run_with,
)
from shared.runtime import Runtime

# services.config.properties (FastStream for the broadcast) is imported by the commands that
# write, so that `outgoing show` starts fast.

app = typer.Typer(help="The outgoing SMTP connection.", no_args_is_help=True)

OUTGOING_COLUMNS = (
    "host",
    "port",
    "security",
    "username",
    "password_set",
    "connect_timeout_ms",
    "send_timeout_ms",
    "concurrency",
)


@app.command("set")
def outgoing_set(
    host: Annotated[str, typer.Option()],
    security: Annotated[str, typer.Option(help="none, starttls or tls")] = "starttls",
    port: Annotated[int | None, typer.Option()] = None,
    username: Annotated[str | None, typer.Option()] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    connect_timeout_ms: Annotated[int, typer.Option()] = 10_000,
    send_timeout_ms: Annotated[int, typer.Option()] = 60_000,
    concurrency: Annotated[int, typer.Option(help="SMTP connections used in parallel.")] = 1,
    ca_file: Annotated[str | None, typer.Option()] = None,
    verify_tls: VerifyTlsOpt = True,
) -> None:
    """Set the outgoing SMTP connection."""
    from services.config.properties import set_outgoing

    fields = {
        "host": host,
        "port": port,
        "security": security,
        "username": username,
        "password": read_secret(password_stdin),
        "connect_timeout_ms": connect_timeout_ms,
        "send_timeout_ms": send_timeout_ms,
        "concurrency": concurrency,
        "ca_file": ca_file,
        "verify_tls": verify_tls,
    }
    conn = run_with(lambda rt: set_outgoing(rt, fields=fields, who=WHO), broker=True)
    print_rows([OutgoingPublic.of(conn)], OUTGOING_COLUMNS, False, "Outgoing connection")


@app.command("show")
def outgoing_show(as_json: JsonOpt = False) -> None:
    """Show the outgoing SMTP connection."""
    config = run_with(loaded_config)
    if config.outgoing is None:
        console.print("no outgoing connection is configured")
        raise typer.Exit(1)
    print_rows(
        [OutgoingPublic.of(config.outgoing)], OUTGOING_COLUMNS, as_json, "Outgoing connection"
    )


@app.command("test")
def outgoing_test(
    to: Annotated[
        str | None, typer.Option("--to", help="Also send a test mail to this address.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Test the outgoing connection: connect, TLS, login, and optionally a test mail."""
    from services.config.api.routes.outgoing_test import OutgoingTestOut
    from services.sender.probe import ProbeReport, probe
    from services.sender.smtp import effective_connection
    from shared.errors import NotFound

    async def work(rt: Runtime) -> ProbeReport:
        config = rt.config
        connection = effective_connection(config)
        if connection is None:
            raise NotFound("no outgoing connection is configured; use `mailroom outgoing set`")
        return await probe(connection, config, send_to=to)

    report = OutgoingTestOut.of(run_with(work))
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


@app.command("auth")
def outgoing_auth(
    basic: Annotated[bool, typer.Option("--basic", help="Username and password.")] = False,
    oauth2: Annotated[bool, typer.Option("--oauth2", help="OAuth 2.0 (XOAUTH2).")] = False,
    same_as: Annotated[
        str | None, typer.Option("--same-as", help="Use this incoming account's credentials.")
    ] = None,
    username: Annotated[str | None, typer.Option()] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    client_id: Annotated[str | None, typer.Option()] = None,
    client_secret_stdin: Annotated[
        bool,
        typer.Option("--client-secret-stdin", help="Read the OAuth client secret from stdin."),
    ] = False,
    authority: Annotated[str | None, typer.Option(help="https://…/<tenant>")] = None,
    scope: Annotated[str | None, typer.Option()] = None,
    oauth_ca_file: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Choose how the outgoing connection logs in (secrets from stdin, never arguments)."""
    from services.config.properties import set_outgoing

    if [basic, oauth2, same_as is not None].count(True) != 1:
        raise typer.BadParameter("give exactly one of --basic, --oauth2, --same-as ACCOUNT")
    fields: dict[str, object]
    if same_as is not None:
        fields = {"credentials_from": same_as}
    elif basic:
        fields = {"auth": "basic", "username": username, "password": read_secret(password_stdin)}
    else:
        fields = {
            "auth": "oauth2",
            "username": username,
            "client_id": client_id,
            "client_secret": read_secret(client_secret_stdin),
            "authority": authority,
            "scope": scope,
            "oauth_ca_file": oauth_ca_file,
        }
    conn = run_with(lambda rt: set_outgoing(rt, fields=fields, who=WHO), broker=True)
    columns = (*OUTGOING_COLUMNS, "auth", "client_id", "client_secret_set", "credentials_from")
    print_rows([OutgoingPublic.of(conn)], columns, False, "Outgoing connection")
