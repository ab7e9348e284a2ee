"""Named credentials (OAuth 2.0, static API tokens): admins add, change, delete and
authorize them; anyone signed in reads them, secrets only as set / not set.
``/oauth/callback`` is where the provider sends the consenting administrator's browser back;
it needs no token (the one-time ``state`` it carries is what only the started consent
knows)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from services.config.api.deps import Admin, RuntimeDep, Viewer
from services.config.api.schemas import CredentialCreate, CredentialPublic, CredentialUpdate
from services.config.credentials import (
    Consenting,
    CredentialShown,
    add_credential,
    change_credential,
    delete_credential,
    finish_consent,
    finish_device_consent_later,
    list_credentials,
    show_credential,
    start_consent,
)
from services.config.web.templates import CONSOLE
from shared.models.credentials import CredentialState

router = APIRouter(tags=["credentials"])

Name = Annotated[str, Path(max_length=64, description="The credential's name.")]


class CredentialOut(BaseModel):
    """A credential (no secret), what Mailroom knows of its tokens, and who uses it."""

    credential: CredentialPublic
    state: CredentialState
    used_by: list[str]


def _out(shown: CredentialShown) -> CredentialOut:
    return CredentialOut(
        credential=CredentialPublic.model_validate(shown.credential),
        state=shown.state,
        used_by=shown.used_by,
    )


@router.get("/credentials")
async def list_all(rt: RuntimeDep, _: Viewer) -> list[CredentialOut]:
    """Every credential with its consent, token expiry, last login and last error."""
    return [_out(c) for c in await list_credentials(rt)]


@router.get("/credentials/{name}")
async def get_one(name: Name, rt: RuntimeDep, _: Viewer) -> CredentialOut:
    """One credential."""
    return _out(await show_credential(rt, name=name))


@router.post("/credentials", status_code=status.HTTP_201_CREATED)
async def add(body: CredentialCreate, rt: RuntimeDep, who: Admin) -> CredentialOut:
    """Add a credential (409 when the name is taken); delegated flows then need consent."""
    credential = await add_credential(rt, fields=body.model_dump(), who=who)
    return _out(await show_credential(rt, name=credential.name))


@router.patch("/credentials/{name}")
async def change(name: Name, body: CredentialUpdate, rt: RuntimeDep, who: Admin) -> CredentialOut:
    """Change a credential; omitted fields keep their value. A changed app registration
    (provider, flow, client, authority, scopes) needs consent again."""
    fields = body.model_dump(exclude_unset=True)
    await change_credential(rt, name=name, fields=fields, who=who)
    return _out(await show_credential(rt, name=name))


@router.delete("/credentials/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(name: Name, rt: RuntimeDep, who: Admin) -> None:
    """Delete a credential and its tokens (409 while an account uses it)."""
    await delete_credential(rt, name=name, who=who)


@router.post("/credentials/{name}/authorize")
async def authorize(name: Name, rt: RuntimeDep, who: Admin) -> Consenting:
    """Start consent: the URL to open (authorization code), or the device code to type; the
    config service completes it (redirect to ``/oauth/callback``, or polling the issuer)."""
    consenting, device_flow = await start_consent(rt, name=name, who=who)
    if device_flow is not None:
        finish_device_consent_later(rt, name=name, flow=device_flow)
    return consenting


def _consented(request: Request, state: CredentialState) -> CredentialState | Response:
    """The state for a client; a person's browser (the console's Authorize) goes on to the
    credential's console page, where the consent shows."""
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse(f"{CONSOLE}/email/credentials/{state.name}", status_code=303)
    return state


@router.get("/oauth/callback", response_model=CredentialState)
async def callback(request: Request, rt: RuntimeDep) -> CredentialState | Response:
    """Where the provider sends the browser back after consent (``code`` and ``state`` in
    the query: Google)."""
    return _consented(request, await finish_consent(rt, query=dict(request.query_params)))


@router.post("/oauth/callback", response_model=CredentialState)
async def callback_form(request: Request, rt: RuntimeDep) -> CredentialState | Response:
    """The same, posted as a form (``response_mode=form_post``: Microsoft)."""
    form = await request.form()
    query = {k: str(v) for k, v in form.items()}
    return _consented(request, await finish_consent(rt, query=query))
