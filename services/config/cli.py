"""``mailroom``: the operator's command line, a thin shell over the services' functions.

Commands talk to MongoDB and RabbitMQ directly with the process settings (MAILROOM_*), so
they work wherever a service could run; every listing takes ``--json``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from services.config import desk
from services.config.account_probe import check_account
from services.config.api.schemas import AccountPublic, FailedMailPublic, OutgoingPublic
from services.config.properties import (
    delete_property,
    list_properties,
    put_account,
    set_fields,
    set_outgoing,
    set_property,
)
from shared.config_views import ACCOUNTS_MODULE, FIELD_MODULES
from shared.errors import MailroomError
from shared.models.config import SystemConfig
from shared.runtime import Runtime
from shared.settings import SharedSettings

T = TypeVar("T")
WHO = "cli"

app = typer.Typer(help="Mailroom: email gateway for case-management systems.", no_args_is_help=True)
accounts_app = typer.Typer(help="Incoming mail accounts.", no_args_is_help=True)
outgoing_app = typer.Typer(help="The outgoing SMTP connection.", no_args_is_help=True)
settings_app = typer.Typer(help="Settings, addresses, processor scripts.", no_args_is_help=True)
props_app = typer.Typer(help="Raw system properties.", no_args_is_help=True)
failed_app = typer.Typer(help="The failed-mail desk.", no_args_is_help=True)
cases_app = typer.Typer(help="Cases (read-only).", no_args_is_help=True)
config_app = typer.Typer(help="Export and import the whole configuration.", no_args_is_help=True)
for sub, name in (
    (accounts_app, "accounts"),
    (outgoing_app, "outgoing"),
    (settings_app, "settings"),
    (props_app, "properties"),
    (failed_app, "failed"),
    (cases_app, "cases"),
    (config_app, "config"),
):
    app.add_typer(sub, name=name)

console = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@asynccontextmanager
async def _runtime(*, broker: bool) -> AsyncIterator[Runtime]:
    rt = Runtime(SharedSettings())
    await rt.start_store()
    if broker:
        await rt.start_broker()
    try:
        yield rt
    finally:
        if broker:
            await rt.broker.stop()
        await rt.close()


def _run(work: Callable[[Runtime], Awaitable[T]], *, broker: bool = False) -> T:
    async def main() -> T:
        async with _runtime(broker=broker) as rt:
            return await work(rt)

    try:
        return asyncio.run(main())
    except MailroomError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


async def _loaded_config(rt: Runtime) -> SystemConfig:
    # The runtime read the whole configuration when it opened the store.
    return rt.config


def _print(rows: Sequence[BaseModel], columns: Sequence[str], as_json: bool, title: str) -> None:
    data = [r.model_dump(mode="json", by_alias=True) for r in rows]
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in data:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console.print(table)


def _parse_value(text: str) -> Any:
    """JSON when it parses (numbers, booleans, lists), the plain string otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _password(password_stdin: bool) -> str | None:
    return sys.stdin.readline().rstrip("\r\n") if password_stdin else None


# -- run ---------------------------------------------------------------------------------


@app.command()
def run(
    service: Annotated[
        str, typer.Argument(help="all, config, fetcher, processor or sender")
    ] = "all",
    host: Annotated[str | None, typer.Option(help="HTTP API address (config)")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP API port (config)")] = None,
) -> None:
    """Run one service, or all four in this process."""
    from services.config.service import build as config
    from services.fetcher.service import build as fetcher
    from services.processor.service import build as processor
    from services.sender.service import build as sender
    from shared.service import Stack

    builders = {"config": config, "fetcher": fetcher, "processor": processor, "sender": sender}
    if service != "all" and service not in builders:
        raise typer.BadParameter(f"unknown service {service!r}; use all or {', '.join(builders)}")
    chosen = list(builders.values()) if service == "all" else [builders[service]]
    settings = SharedSettings()
    stack = Stack(chosen, settings)
    runner = stack.app()
    options: dict[str, Any] = {"host": host or settings.api_host, "port": port or settings.api_port}
    if stack.asgi is not None:
        asyncio.run(runner.run(run_extra_options=options))
    else:
        asyncio.run(runner.run())


@app.command("secret-key")
def secret_key() -> None:
    """Print a new random value for MAILROOM_SECRET_KEY or MAILROOM_API_TOKEN."""
    typer.echo(secrets.token_urlsafe(32))


# -- accounts ----------------------------------------------------------------------------

ACCOUNT_COLUMNS = (
    "name",
    "protocol",
    "security",
    "host",
    "port",
    "folder",
    "username",
    "password_set",
    "delete_read_messages",
    "enabled",
)


@accounts_app.command("list")
def accounts_list(as_json: JsonOpt = False) -> None:
    """List incoming accounts."""
    config = _run(_loaded_config)
    rows = [AccountPublic.of(a) for a in config.accounts.values()]
    _print(rows, ACCOUNT_COLUMNS, as_json, "Incoming accounts")


@accounts_app.command("add")
def accounts_add(
    name: str,
    host: Annotated[str, typer.Option()],
    username: Annotated[str, typer.Option()],
    protocol: Annotated[str, typer.Option(help="IMAP, IMAPS, POP3 or POP3S")] = "IMAPS",
    security: Annotated[
        str, typer.Option(help="IMAP/POP3 only: auto, STARTTLS or none (password in clear)")
    ] = "auto",
    port: Annotated[int | None, typer.Option()] = None,
    folder: Annotated[str, typer.Option()] = "INBOX",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
    delete: Annotated[str, typer.Option(help="inherit, yes or no")] = "inherit",
    ca_file: Annotated[str | None, typer.Option()] = None,
    no_verify_tls: Annotated[bool, typer.Option(help="Do not verify certificates.")] = False,
    disabled: Annotated[bool, typer.Option(help="Add it deactivated.")] = False,
    auth: Annotated[str, typer.Option(help="basic or oauth2")] = "basic",
    client_id: Annotated[str | None, typer.Option(help="OAuth 2.0 client id")] = None,
    authority: Annotated[str | None, typer.Option(help="OAuth 2.0 authority URL")] = None,
    scope: Annotated[str | None, typer.Option(help="OAuth 2.0 scope")] = None,
    oauth_ca_file: Annotated[str | None, typer.Option(help="CA of a private issuer")] = None,
    start_position: Annotated[str, typer.Option(help="IMAP: all, new or since")] = "all",
    start_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD for since")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an incoming account (password, or with --auth oauth2 the client secret, from
    stdin with --password-stdin, never from the command line)."""
    fields = {
        "protocol": protocol.upper(),
        "security": "STARTTLS" if security.lower() == "starttls" else security.lower(),
        "host": host,
        "port": port,
        "folder": folder,
        "username": username,
        "delete_read_messages": delete,
        "ca_file": ca_file,
        "verify_tls": not no_verify_tls,
        "enabled": not disabled,
        "auth": auth.lower(),
        "client_id": client_id,
        "authority": authority,
        "scope": scope,
        "oauth_ca_file": oauth_ca_file,
        "start_position": start_position.lower(),
        "start_date": start_date,
    }
    fields["client_secret" if auth.lower() == "oauth2" else "password"] = _password(password_stdin)
    account = _run(
        lambda rt: put_account(rt, name=name, fields=fields, who=WHO, create=True), broker=True
    )
    _print([AccountPublic.of(account)], ACCOUNT_COLUMNS, as_json, "Account added")


def _set_enabled(name: str, enabled: bool) -> None:
    _run(
        lambda rt: put_account(rt, name=name, fields={"enabled": enabled}, who=WHO, create=False),
        broker=True,
    )
    console.print(f"account {name} {'activated' if enabled else 'deactivated'}")


@accounts_app.command("activate")
def accounts_activate(name: str) -> None:
    """Activate an account."""
    _set_enabled(name, True)


@accounts_app.command("deactivate")
def accounts_deactivate(name: str) -> None:
    """Deactivate an account (it keeps its settings)."""
    _set_enabled(name, False)


@accounts_app.command("delete")
def accounts_delete(name: str) -> None:
    """Delete an account."""
    _run(lambda rt: delete_property(rt, module=ACCOUNTS_MODULE, key=name, who=WHO), broker=True)
    console.print(f"account {name} deleted")


@accounts_app.command("test")
def accounts_test(name: str, as_json: JsonOpt = False) -> None:
    """Test connection: connect, authenticate, select; message count or the error."""
    report = _run(lambda rt: check_account(rt, name=name))
    columns = ("account", "server", "protocol", "ok", "message_count", "error")
    _print([report], columns, as_json, "Connection test")
    if not report.ok:
        raise typer.Exit(1)


# -- outgoing ----------------------------------------------------------------------------

OUTGOING_COLUMNS = (
    "host",
    "port",
    "security",
    "username",
    "password_set",
    "connect_timeout_ms",
    "send_timeout_ms",
)


@outgoing_app.command("set")
def outgoing_set(
    host: Annotated[str, typer.Option()],
    security: Annotated[str, typer.Option(help="none, starttls or tls")] = "starttls",
    port: Annotated[int | None, typer.Option()] = None,
    username: Annotated[str | None, typer.Option()] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
    connect_timeout_ms: Annotated[int, typer.Option()] = 10_000,
    send_timeout_ms: Annotated[int, typer.Option()] = 60_000,
    ca_file: Annotated[str | None, typer.Option()] = None,
    no_verify_tls: Annotated[bool, typer.Option(help="Do not verify certificates.")] = False,
) -> None:
    """Set the outgoing SMTP connection."""
    fields = {
        "host": host,
        "port": port,
        "security": security,
        "username": username,
        "password": _password(password_stdin),
        "connect_timeout_ms": connect_timeout_ms,
        "send_timeout_ms": send_timeout_ms,
        "ca_file": ca_file,
        "verify_tls": not no_verify_tls,
    }
    conn = _run(lambda rt: set_outgoing(rt, fields=fields, who=WHO), broker=True)
    _print([OutgoingPublic.of(conn)], OUTGOING_COLUMNS, False, "Outgoing connection")


@outgoing_app.command("show")
def outgoing_show(as_json: JsonOpt = False) -> None:
    """Show the outgoing SMTP connection."""
    config = _run(_loaded_config)
    if config.outgoing is None:
        console.print("no outgoing connection is configured")
        raise typer.Exit(1)
    _print([OutgoingPublic.of(config.outgoing)], OUTGOING_COLUMNS, as_json, "Outgoing connection")


# -- settings and properties -------------------------------------------------------------


MODULE_HELP = "settings, addresses, processor or conversation"


@settings_app.command("show")
def settings_show(
    module: Annotated[str, typer.Argument(help=MODULE_HELP)] = "settings",
) -> None:
    """Show a typed view with its defaults filled in (always JSON)."""
    config = _run(_loaded_config)
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
        values[key] = _parse_value(value)
    version = _run(lambda rt: set_fields(rt, module=module, values=values, who=WHO), broker=True)
    console.print(f"saved, configuration version {version}")


@props_app.command("list")
def properties_list(as_json: JsonOpt = False) -> None:
    """List every raw property (secrets as ***)."""
    props = _run(list_properties)
    _print(props, ("module", "key", "value", "version", "updated_by"), as_json, "Properties")


@props_app.command("set")
def properties_set(module: str, key: str, value: str) -> None:
    """Set one raw property (VALUE as JSON or text)."""
    version = _run(
        lambda rt: set_property(rt, module=module, key=key, value=_parse_value(value), who=WHO),
        broker=True,
    )
    console.print(f"saved, configuration version {version}")


# -- failed-mail desk --------------------------------------------------------------------

FAILED_COLUMNS = ("id", "account", "sender", "error", "attempts", "last_failed_at", "status")
SenderOpt = Annotated[str | None, typer.Option(help="Text the sender address contains.")]
ErrorOpt = Annotated[str | None, typer.Option(help="Text the error contains.")]
AccountOpt = Annotated[str | None, typer.Option(help="The incoming account.")]


@failed_app.command("list")
def failed_list(
    account: AccountOpt = None,
    error: ErrorOpt = None,
    sender: SenderOpt = None,
    since: Annotated[datetime | None, typer.Option(help="Failed at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Failed at or before (ISO 8601).")] = None,
    all_states: Annotated[bool, typer.Option("--all", help="Include replayed.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List and search failed mails, most recent first."""
    entries = _run(
        lambda rt: rt.store.desk.search(
            status=None if all_states else "failed",
            account=account,
            error_contains=error,
            sender_contains=sender,
            since=since,
            until=until,
        )
    )
    _print([FailedMailPublic.of(e) for e in entries], FAILED_COLUMNS, as_json, "Failed mails")


@failed_app.command("show")
def failed_show(
    failed_id: str,
    raw: Annotated[bool, typer.Option("--raw", help="Print the mail as fetched.")] = False,
    parsed: Annotated[bool, typer.Option("--parsed", help="Print the parsed mail.")] = False,
) -> None:
    """Show one failed mail (JSON), its raw form or its parsed form."""
    if raw:
        data = _run(lambda rt: desk.raw_of(rt, failed_id=failed_id))
        sys.stdout.buffer.write(data)
        return
    if parsed:
        result = _run(lambda rt: desk.parsed_of(rt, failed_id=failed_id))
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    entry = _run(lambda rt: rt.store.desk.get(failed_id=failed_id))
    typer.echo(FailedMailPublic.of(entry).model_dump_json(indent=2))


@failed_app.command("replay")
def failed_replay(
    failed_id: Annotated[str | None, typer.Argument()] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every failed mail.")] = False,
    account: AccountOpt = None,
    error: ErrorOpt = None,
    sender: SenderOpt = None,
) -> None:
    """Replay one failed mail, or all (optionally filtered) with --all."""
    if (failed_id is None) == (not all_):
        raise typer.BadParameter("give one ID or --all")
    if failed_id is not None:
        one = failed_id
        results = [_run(lambda rt: desk.replay(rt, failed_id=one, who=WHO), broker=True)]
    else:
        results = _run(
            lambda rt: desk.replay_all(
                rt, who=WHO, account=account, error_contains=error, sender_contains=sender
            ),
            broker=True,
        )
    for r in results:
        console.print(f"{r.failed_id}: {r.note}", highlight=False)
    console.print(f"{sum(r.replayed for r in results)} replayed")


@failed_app.command("delete")
def failed_delete(failed_id: str) -> None:
    """Take a failed mail off the desk (the raw mail stays stored; audited)."""
    deleted = _run(lambda rt: desk.delete(rt, failed_id=failed_id, who=WHO))
    console.print(f"{failed_id}: {'deleted' if deleted else 'already deleted'}")


# -- export and import -------------------------------------------------------------------


@config_app.command("export")
def config_export(
    path: Annotated[Path, typer.Argument(help="Where to write the JSON document.")],
    passphrase_stdin: Annotated[
        bool, typer.Option(help="Include secrets, encrypted with a passphrase read from stdin.")
    ] = False,
) -> None:
    """Export the whole configuration to one file (secrets left out unless asked for)."""
    from services.config.transfer import export_config

    passphrase = _password(passphrase_stdin)
    if passphrase is not None and len(passphrase) < 12:
        raise typer.BadParameter("the passphrase needs at least 12 characters")
    document = _run(lambda rt: export_config(rt, passphrase=passphrase))
    path.write_text(document.model_dump_json(indent=2))
    path.chmod(0o600)
    console.print(
        f"{len(document.properties)} properties written to {path} (secrets {document.secrets})",
        highlight=False,
    )


@config_app.command("import")
def config_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    passphrase_stdin: Annotated[bool, typer.Option(help="Read the passphrase from stdin.")] = False,
    replace: Annotated[
        bool, typer.Option(help="Remove properties the file does not hold.")
    ] = False,
) -> None:
    """Import a configuration file; validated as a whole, nothing written when refused."""
    from services.config.transfer import ConfigExport, import_config

    document = ConfigExport.model_validate_json(path.read_text())
    passphrase = _password(passphrase_stdin)
    version = _run(
        lambda rt: import_config(
            rt, document=document, who=WHO, passphrase=passphrase, replace=replace
        ),
        broker=True,
    )
    console.print(f"imported, configuration version {version}")


# -- processor dry run -------------------------------------------------------------------


@app.command()
def simulate(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .eml file")],
    as_json: JsonOpt = False,
) -> None:
    """Parse a mail and run every incoming-mail script as a dry run; changes nothing."""
    from services.processor.simulate import StoreCaseLookup
    from services.processor.simulate import simulate as dry_run

    data = path.read_bytes()
    result = _run(lambda rt: dry_run(data, config=rt.config, cases=StoreCaseLookup(rt.store.cases)))
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    decision = result["decision"]
    console.print(f"[bold]{result.get('subject', '')}[/bold]", highlight=False)
    console.print(f"classification: {result.get('classification')}", highlight=False)
    console.print(
        f"decision: {decision['action']} (rule {decision['rule']}): {decision['reason']}",
        highlight=False,
    )
    for note in result.get("notes", []):
        console.print(f"note: {note}", highlight=False)


# -- cases -------------------------------------------------------------------------------


@cases_app.command("list")
def cases_list(as_json: JsonOpt = False) -> None:
    """The newest cases."""
    cases = _run(lambda rt: rt.store.cases.recent())
    _print(cases, ("number", "subject", "status", "created_at"), as_json, "Cases")


@cases_app.command("show")
def cases_show(number: int) -> None:
    """A case's mails (JSON)."""
    messages = _run(lambda rt: rt.store.cases.messages(case_number=number))
    typer.echo(json.dumps([m.model_dump(mode="json", by_alias=True) for m in messages], indent=2))


# The sender's commands live in their own module; imported last, as it uses the helpers above.
from services.config.cli_sender import archive_app, outgoing_auth, outgoing_test  # noqa: E402

app.add_typer(archive_app, name="archive")
outgoing_app.command("test")(outgoing_test)
outgoing_app.command("auth")(outgoing_auth)
