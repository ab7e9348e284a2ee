"""``mailroom accounts …``: incoming mail accounts, always referred to by name."""

from __future__ import annotations

from typing import Annotated

import typer

from services.config.account_health import read_health
from services.config.api.schemas import AccountPublic
from services.config.cli.common import (
    WHO,
    JsonOpt,
    VerifyTlsOpt,
    console,
    print_rows,
    read_secret,
    run_with,
)
from services.config.fetchers import accounts_listed

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
    "delete_read_messages",
    "enabled",
)


@app.command("list")
def accounts_list(as_json: JsonOpt = False) -> None:
    """List incoming accounts with the fetcher instance that owns each and its last fetch."""
    rows = run_with(accounts_listed)
    print_rows(rows, (*ACCOUNT_COLUMNS, "owner", "last_fetch_at"), as_json, "Incoming accounts")


@app.command("add")
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
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    delete: Annotated[str, typer.Option(help="inherit, yes or no")] = "inherit",
    debug: Annotated[
        str, typer.Option(help="protocol trace in the logs: inherit, yes or no")
    ] = "inherit",
    ca_file: Annotated[str | None, typer.Option()] = None,
    verify_tls: VerifyTlsOpt = True,
    enabled: Annotated[
        bool, typer.Option("--enabled/--disabled", help="Add it active, or deactivated.")
    ] = True,
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
    from services.config.properties import put_account

    fields = {
        "protocol": protocol.upper(),
        "security": "STARTTLS" if security.lower() == "starttls" else security.lower(),
        "host": host,
        "port": port,
        "folder": folder,
        "username": username,
        "delete_read_messages": delete,
        "debug": debug.lower(),
        "ca_file": ca_file,
        "verify_tls": verify_tls,
        "enabled": enabled,
        "auth": auth.lower(),
        "client_id": client_id,
        "authority": authority,
        "scope": scope,
        "oauth_ca_file": oauth_ca_file,
        "start_position": start_position.lower(),
        "start_date": start_date,
    }
    fields["client_secret" if auth.lower() == "oauth2" else "password"] = read_secret(
        password_stdin
    )
    account = run_with(
        lambda rt: put_account(rt, name=name, fields=fields, who=WHO, create=True), broker=True
    )
    print_rows([AccountPublic.of(account)], ACCOUNT_COLUMNS, as_json, "Account added")


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


@app.command("test")
def accounts_test(name: str, as_json: JsonOpt = False) -> None:
    """Test connection: connect, authenticate, select; message count or the error."""
    from services.config.account_probe import check_account

    report = run_with(lambda rt: check_account(rt, name=name))
    columns = ("account", "server", "protocol", "ok", "message_count", "error")
    print_rows([report], columns, as_json, "Connection test")
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
