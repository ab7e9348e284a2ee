"""``mailroom outgoing …``: the outgoing SMTP connection, its login and its test."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.config.api.schemas import OutgoingPublic
from services.config.cli.common import (
    WHO,
    JsonOpt,
    console,
    loaded_config,
    print_rows,
    run_with,
)
from services.config.cli.field_options import given_fields, with_field_options
from shared.models.field_specs import outgoing_fields
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


FIELDS = outgoing_fields()
"""The options of ``set``: every field of the connection."""


@app.command("set")
@with_field_options(FIELDS, create=False)
def outgoing_set(as_json: JsonOpt = False, **values: Any) -> None:
    """Set the outgoing SMTP connection: the options given, the others keep their value (a
    new connection: their defaults; --reset FIELD puts one back). Secrets from stdin:
    --password-stdin, --client-secret-stdin."""
    from services.config.properties import set_outgoing

    fields = given_fields(FIELDS, values)
    conn = run_with(lambda rt: set_outgoing(rt, fields=fields, who=WHO), broker=True)
    print_rows([OutgoingPublic.of(conn)], OUTGOING_COLUMNS, as_json, "Outgoing connection")


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
        return await probe(connection, config, send_to=to, credentials=rt.credentials)

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


AUTH_FIELDS = [
    spec
    for spec in FIELDS
    if spec.group == "Sign-in" and spec.name not in ("auth", "credentials_from")
]
"""The login fields ``auth`` takes; the method is its --basic, --oauth2 or --same-as."""


@app.command("auth")
@with_field_options(AUTH_FIELDS, create=False)
def outgoing_auth(
    basic: Annotated[bool, typer.Option("--basic", help="Username and password.")] = False,
    oauth2: Annotated[bool, typer.Option("--oauth2", help="OAuth 2.0 (XOAUTH2).")] = False,
    same_as: Annotated[
        str | None, typer.Option("--same-as", help="Use this incoming account's credentials.")
    ] = None,
    **values: Any,
) -> None:
    """Choose how the outgoing connection logs in (secrets from stdin, never arguments)."""
    from services.config.properties import set_outgoing

    if [basic, oauth2, same_as is not None].count(True) != 1:
        raise typer.BadParameter("give exactly one of --basic, --oauth2, --same-as ACCOUNT")
    fields: dict[str, object]
    if same_as is not None:
        fields = {"credentials_from": same_as}
    else:
        method = {"auth": "basic" if basic else "oauth2"}
        # The fields of the other method are left out: switching drops them (set_outgoing).
        login = {spec.name for spec in AUTH_FIELDS if spec.applies(method)}
        given = given_fields(AUTH_FIELDS, values)
        fields = {**method, **{k: v for k, v in given.items() if k in login}}
    conn = run_with(lambda rt: set_outgoing(rt, fields=fields, who=WHO), broker=True)
    columns = (*OUTGOING_COLUMNS, "auth", "client_id", "client_secret_set", "credentials_from")
    print_rows([OutgoingPublic.of(conn)], columns, False, "Outgoing connection")
