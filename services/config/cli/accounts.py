"""``mailroom accounts …``: incoming mail accounts, always referred to by name."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.config.account_health import read_health
from services.config.api.schemas import AccountPublic
from services.config.cli.common import (
    WHO,
    JsonOpt,
    console,
    print_rows,
    run_with,
)
from services.config.cli.field_options import given_fields, with_field_options
from services.config.fetchers import accounts_listed
from shared.models.field_specs import account_fields
from shared.runtime import Runtime

# The writes (services.config.accounts/properties: FastStream for the broadcast) and the
# connection test (the mailbox adapters) are imported by their commands, so that the
# listings start fast.

app = typer.Typer(help="Incoming mail accounts.", no_args_is_help=True)

ACCOUNT_COLUMNS = (
    "name",
    "protocol",
    "security",
    "host",
    "port",
    "folder",
    "username",
    "password_set",
    "after_fetch",
    "enabled",
)


@app.command("list")
def accounts_list(as_json: JsonOpt = False) -> None:
    """List incoming accounts with the fetcher instance that owns each and its last fetch."""
    rows = run_with(accounts_listed)
    print_rows(rows, (*ACCOUNT_COLUMNS, "owner", "last_fetch_at"), as_json, "Incoming accounts")


FIELDS = [spec for spec in account_fields() if spec.name != "name"]
"""The options of ``add`` and ``set``: every field of an account but its name (an argument;
``rename`` changes it)."""
FLAGS = {"enabled": ("--enabled/--disabled",)}
"""Option names other than the derived ones: ``--disabled`` reads better."""


@app.command("add")
@with_field_options(FIELDS, create=True, flags=FLAGS)
def accounts_add(name: str, as_json: JsonOpt = False, **values: Any) -> None:
    """Add an incoming account. Secrets come from stdin, never from the command line:
    --password-stdin (with --auth oauth2 it reads the client secret)."""
    from services.config.properties import put_account

    fields = given_fields(FIELDS, values)
    account = run_with(
        lambda rt: put_account(rt, name=name, fields=fields, who=WHO, create=True), broker=True
    )
    print_rows([AccountPublic.of(account)], ACCOUNT_COLUMNS, as_json, "Account added")


@app.command("set")
@with_field_options(FIELDS, create=False, flags=FLAGS)
def accounts_set(name: str, as_json: JsonOpt = False, **values: Any) -> None:
    """Change an account: the options given, the others keep their value (--reset FIELD puts
    one back to its default). Secrets from stdin: --password-stdin, --client-secret-stdin."""
    from services.config.properties import put_account

    fields = given_fields(FIELDS, values)
    account = run_with(
        lambda rt: put_account(rt, name=name, fields=fields, who=WHO, create=False), broker=True
    )
    print_rows([AccountPublic.of(account)], ACCOUNT_COLUMNS, as_json, "Account changed")


def _set_enabled(name: str, enabled: bool) -> None:
    from services.config.accounts import set_enabled

    run_with(lambda rt: set_enabled(rt, name=name, enabled=enabled, who=WHO), broker=True)
    console.print(f"account {name} {'activated' if enabled else 'deactivated'}")


@app.command("activate")
def accounts_activate(name: str) -> None:
    """Activate an account."""
    _set_enabled(name, True)


@app.command("deactivate")
def accounts_deactivate(name: str) -> None:
    """Deactivate an account (it keeps its settings)."""
    _set_enabled(name, False)


@app.command("copy")
def accounts_copy(
    source: str,
    name: str,
    enabled: Annotated[bool, typer.Option("--enabled", help="Start it active.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy an account's settings and secrets (encrypted) to a new, deactivated account."""
    from services.config.accounts import copy_account

    account = run_with(
        lambda rt: copy_account(rt, source=source, name=name, who=WHO, enabled=enabled),
        broker=True,
    )
    print_rows([AccountPublic.of(account)], ACCOUNT_COLUMNS, as_json, "Account copied")


@app.command("rename")
def accounts_rename(name: str, new_name: str) -> None:
    """Rename an account; its stored mail, fetch position, desk entries and health follow."""
    from services.config.accounts import rename_account

    run_with(lambda rt: rename_account(rt, name=name, new_name=new_name, who=WHO), broker=True)
    console.print(f"account {name} renamed to {new_name}")


@app.command("delete")
def accounts_delete(name: str) -> None:
    """Delete an account (mail already fetched stays)."""
    from services.config.accounts import delete_account

    run_with(lambda rt: delete_account(rt, name=name, who=WHO), broker=True)
    console.print(f"account {name} deleted")


TEST_COLUMNS = ("account", "server", "protocol", "ok", "message_count", "error")
OUTGOING_COLUMNS = ("server", "security", "ok", "steps", "error", "test_mail")


@app.command("test")
@with_field_options(FIELDS, create=False, flags=FLAGS)
def accounts_test(
    name: str,
    from_values: Annotated[
        bool,
        typer.Option(
            "--from-values",
            help="Test the account the options describe (over the saved NAME, if it exists) "
            "without saving anything.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    **values: Any,
) -> None:
    """Test connection: connect, authenticate, select; message count or the error. An
    account with its own outgoing server has it tested too."""
    from services.config.account_probe import check_saved, check_values
    from services.config.api.routes.accounts import AccountTestOut

    fields = given_fields(FIELDS, values)
    if fields and not from_values:
        raise typer.BadParameter("account options are tested only with --from-values")
    if from_values:
        exists = run_with(lambda rt: _exists(rt, name))
        draft = fields if exists else {**fields, "name": name}
        check = run_with(lambda rt: check_values(rt, fields=draft, saved=name if exists else None))
    else:
        check = run_with(lambda rt: check_saved(rt, name=name))
    shown = AccountTestOut.of(check)
    print_rows([shown], TEST_COLUMNS, as_json, "Connection test")
    if shown.outgoing is not None and not as_json:
        print_rows([shown.outgoing], OUTGOING_COLUMNS, False, "Outgoing server")
    if not check.ok:
        raise typer.Exit(1)


async def _exists(rt: Runtime, name: str) -> bool:
    return name in rt.config.accounts


@app.command("folders")
def accounts_folders(name: str, as_json: JsonOpt = False) -> None:
    """The account's folders on its server (IMAP LIST; POP3 has only INBOX): the values
    --folder takes."""
    from services.config.account_probe import folders_of

    report = run_with(lambda rt: folders_of(rt, name=name))
    if as_json:
        print_rows([report], ("account", "server", "folders", "error"), True, "Folders")
    elif report.folders is not None:
        for folder in report.folders:
            typer.echo(folder)
    if report.error is not None:
        if not as_json:
            typer.echo(f"folders not listed: {report.error}", err=True)
        raise typer.Exit(1)


@app.command("test-mail")
def accounts_test_mail(
    name: str,
    to: Annotated[
        str | None, typer.Option("--to", help="The address the test mail goes to.")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Without --to: send to this console user's email."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Test Account: send a real test mail through the account's outgoing path (its own
    server, else the global connection, with its From settings) to --to or to --user's
    email; the server's answer."""
    from services.config.account_probe import send_test_mail
    from services.config.api.routes.outgoing_test import OutgoingTestOut
    from services.config.users import address_of
    from services.sender.probe import ProbeReport

    async def send(rt: Runtime) -> ProbeReport:
        address = to if to is not None else await address_of(rt, user=user)
        return await send_test_mail(rt, name=name, to=address)

    report = OutgoingTestOut.of(run_with(send))
    print_rows([report], OUTGOING_COLUMNS, as_json, "Test mail")
    if not report.ok:
        raise typer.Exit(1)


@app.command("debug")
def accounts_debug(
    name: str, switch: Annotated[str, typer.Argument(help="yes, no or inherit")]
) -> None:
    """Turn the account's protocol trace (secrets redacted) in the fetcher's logs on or off;
    inherit follows the settings' debug_protocol."""
    from services.config.properties import put_account

    fields = {"debug": switch.lower()}
    run_with(
        lambda rt: put_account(rt, name=name, fields=fields, who=WHO, create=False), broker=True
    )
    console.print(f"account {name}: debug {switch.lower()}")


HEALTH_COLUMNS = (
    "account",
    "last_fetch_at",
    "last_token_at",
    "token_expires_at",
    "last_auth_error",
    "last_error",
    "failures",
)


@app.command("health")
def accounts_health(
    name: Annotated[str | None, typer.Argument(help="one account; all when left out")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Credential and fetch health as the fetcher recorded it: last good fetch, OAuth 2.0
    token time and expiry, last auth error, last error, failures in a row."""
    rows = run_with(lambda rt: read_health(rt, name=name))
    print_rows(rows, HEALTH_COLUMNS, as_json, "Account health")
