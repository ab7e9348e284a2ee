"""``mailroom credentials …``: named OAuth 2.0 credentials and static API tokens that
accounts sign in with.

Secrets (client secret, service account key, API token) come from stdin
(``--client-secret-stdin``, ``--service-account-key-stdin``, ``--token-stdin``), never from
arguments, and are never printed: listings show
them as set / not set. ``authorize NAME`` prints the URL to open (authorization code; the
config service's ``/oauth/callback`` completes the consent) or the device code to type (this
command then waits until the user signed in).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict

from services.config.cli.common import WHO, JsonOpt, console, print_rows, run_with
from services.config.cli.field_options import given_fields, with_field_options
from shared.models.field_specs import credential_fields

app = typer.Typer(
    help="Named OAuth 2.0 credentials (Microsoft 365, Google Workspace) and their consent, "
    "and static API tokens (Fastmail, Stalwart).",
    no_args_is_help=True,
)

FIELDS = [spec for spec in credential_fields() if spec.name != "name"]
"""Every field of a credential but its name (an argument)."""
COLUMNS = (
    "name",
    "provider",
    "flow",
    "client_id",
    "client_secret_set",
    "client_secret_expires",
    "token_set",
    "consent",
    "token_expires_at",
    "last_login_at",
    "last_error",
    "used_by",
)
WAIT_S = 600.0
"""How long ``authorize`` waits for the browser's consent to arrive by default."""


class CredentialRow(BaseModel):
    """A credential (secrets as set / not set) and its state, flattened into one row."""

    model_config = ConfigDict(extra="allow")


def _rows(shown: list[Any]) -> list[CredentialRow]:
    return [
        CredentialRow(
            **s.credential, **s.state.model_dump(exclude={"name"}), used_by=", ".join(s.used_by)
        )
        for s in shown
    ]


@app.command("list")
def credentials_list(as_json: JsonOpt = False) -> None:
    """List credentials with their consent, token expiry, last login and last error."""
    from services.config.credentials import list_credentials

    print_rows(_rows(run_with(list_credentials)), COLUMNS, as_json, "Credentials")


@app.command("show")
def credentials_show(name: str, as_json: JsonOpt = False) -> None:
    """Show one credential (secrets as set / not set) and its state."""
    from services.config.credentials import show_credential

    shown = run_with(lambda rt: show_credential(rt, name=name))
    rows = _rows([shown])
    print_rows(rows, tuple(rows[0].model_dump()), as_json, f"Credential {name}")


@app.command("add")
@with_field_options(FIELDS, create=True)
def credentials_add(name: str, as_json: JsonOpt = False, **values: Any) -> None:
    """Add a credential. Secrets from stdin: --client-secret-stdin,
    --service-account-key-stdin (the JSON key on one line), or --token-stdin (a static API
    token: --provider static)."""
    from services.config.credentials import add_credential, show_credential

    fields = {"name": name, **given_fields(FIELDS, values)}

    async def add(rt: Any) -> Any:
        await add_credential(rt, fields=fields, who=WHO)
        return await show_credential(rt, name=name)

    print_rows(_rows([run_with(add)]), COLUMNS, as_json, "Credential added")


@app.command("set")
@with_field_options(FIELDS, create=False)
def credentials_set(name: str, as_json: JsonOpt = False, **values: Any) -> None:
    """Change a credential: the options given, the others keep their value (a changed app
    registration needs `authorize` again)."""
    from services.config.credentials import change_credential, show_credential

    fields = given_fields(FIELDS, values)

    async def change(rt: Any) -> Any:
        await change_credential(rt, name=name, fields=fields, who=WHO)
        return await show_credential(rt, name=name)

    print_rows(_rows([run_with(change)]), COLUMNS, as_json, "Credential changed")


@app.command("delete")
def credentials_delete(name: str) -> None:
    """Delete a credential and its tokens (refused while an account uses it)."""
    from services.config.credentials import delete_credential

    run_with(lambda rt: delete_credential(rt, name=name, who=WHO))
    console.print(f"deleted credential {name}", highlight=False)


@app.command("authorize")
def credentials_authorize(
    name: str,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for the browser's consent (0: do not wait)."),
    ] = WAIT_S,
) -> None:
    """Consent for a delegated credential: prints the URL to open (then waits for the
    redirect to reach the config service), or the device code to type (then waits for the
    sign-in)."""
    from services.config.credentials import finish_device_consent, start_consent

    async def authorize(rt: Any) -> str:
        consenting, device_flow = await start_consent(rt, name=name, who=WHO)
        if device_flow is not None:
            typer.echo(consenting.message or f"code {consenting.user_code}", err=False)
            state = await finish_device_consent(rt, name=name, flow=device_flow)
            return f"consent granted by {state.consented_by or 'the user'}"
        typer.echo(f"Open this URL in a browser and sign in as the mailbox user:\n{consenting.url}")
        return await _wait_for_consent(rt, name, wait)

    console.print(run_with(authorize), highlight=False)


async def _wait_for_consent(rt: Any, name: str, wait: float) -> str:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        state = await rt.credentials.state(name=name)
        if state.consent == "granted":
            return f"consent granted by {state.consented_by or 'the user'}"
        if state.consent == "failing":
            return f"consent failed: {state.last_error}"
        await asyncio.sleep(1.0)
    return "not consented yet: the credential stays pending until the redirect arrives"
