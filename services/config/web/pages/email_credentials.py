"""Email configuration → Credentials: the named credentials (OAuth 2.0, static API tokens)
with their health, the credential form (declared by ``Credential``; secrets write-only),
Delete (refused while an account uses it) and Authorize for the delegated flows. Every
action calls the function the API route calls, with the signed-in user as ``who``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.config.api.deps import RuntimeDep
from services.config.credentials import (
    CredentialShown,
    add_credential,
    change_credential,
    delete_credential,
    finish_device_consent_later,
    list_credentials,
    show_credential,
    start_consent,
)
from services.config.web.auth import AdminForm, Administering, Posted, Viewing, Visitor
from services.config.web.model_form import (
    check,
    form_fields,
    grouped,
    parse_form,
    posted_values,
    shown,
    stored_values,
    texts,
    write_checked,
)
from services.config.web.responses import after_post
from services.config.web.templates import CONSOLE, render
from shared.credential_health import CredentialReport, check_credentials
from shared.errors import ConfigRejected, NotFound
from shared.models.credentials import (
    DELEGATED,
    FLOWS,
    Credential,
    CredentialLogEntry,
    CredentialState,
)
from shared.models.field_specs import field_specs
from shared.runtime import Runtime

router = APIRouter(prefix=f"{CONSOLE}/email", include_in_schema=False)

CREDENTIALS = f"{CONSOLE}/email/credentials"
DRAFT = f"{CONSOLE}/email/credential-draft"
"""Posting the form here re-renders it for the chosen provider and flow, without saving."""
# It and new-credential are outside /credentials/: "new" is a valid credential name.

HINTS: Mapping[str, Mapping[str, Any]] = {
    "certificate": {"multiline": True},
    "service_account_key": {"multiline": True},
}
"""Secrets pasted as several lines (PEM, JSON key file)."""

FIELDS = form_fields(Credential, hints=HINTS)
EDIT_FIELDS = tuple(f for f in FIELDS if f.name != "name")
"""A saved credential keeps its name: accounts refer to it by that name."""
HISTORY_SHOWN = 20
"""The latest audit entries a credential's page shows."""
STATUS_ORDER = {"failing": 0, "warning": 1, "ok": 2}


@dataclass(frozen=True)
class CredentialRow:
    """One line of the list: the credential, its health and who uses it."""

    name: str
    provider: str
    flow: str
    used_by: list[str]
    report: CredentialReport

    @property
    def soonest(self) -> datetime | None:
        """The earliest of the expiries an administrator must act on."""
        r = self.report
        dates = [d for d in (r.client_secret_expires, r.certificate_expires) if d is not None]
        return min(dates) if dates else None


def _report(shown_: CredentialShown, reports: Mapping[str, CredentialReport]) -> CredentialReport:
    """The credential's health report; one whose check failed (logged) shows its state."""
    c, state = shown_.credential, shown_.state
    return reports.get(c["name"]) or CredentialReport(
        name=c["name"], provider=c["provider"], flow=c["flow"], status="ok",
        consent=state.consent, last_login_at=state.last_login_at,
        token_expires_at=state.token_expires_at, last_error=state.last_error,
        last_error_at=state.last_error_at,
    )  # fmt: skip


async def _rows(rt: Runtime) -> list[CredentialRow]:
    # Without alerts: reading a page must not mail the administrators.
    reports = {r.name: r for r in await check_credentials(rt, alert=False)}
    rows = [
        CredentialRow(
            name=c.credential["name"],
            provider=c.credential["provider"],
            flow=c.credential["flow"],
            used_by=c.used_by,
            report=_report(c, reports),
        )
        for c in await list_credentials(rt)
    ]
    # As the Health page: what needs attention first, then the soonest expiry.
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(rows, key=lambda r: (STATUS_ORDER[r.report.status], r.soonest or far, r.name))


@router.get("/credentials")
async def credentials_page(request: Request, rt: RuntimeDep, visitor: Viewing) -> HTMLResponse:
    """The credentials with their health, failing and soonest expiring first."""
    return render(
        request,
        "email_credentials.html",
        visitor,
        title="Credentials",
        tab="credentials",
        rows=await _rows(rt),
    )


async def _credential(rt: Runtime, name: str) -> Credential:
    """The stored credential (NotFound when there is none)."""
    return await rt.credentials.get(name=name)


async def _form_page(
    request: Request,
    rt: Runtime,
    visitor: Visitor,
    *,
    saved: str | None,
    values: Mapping[str, Any],
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    fields = FIELDS if saved is None else EDIT_FIELDS
    row = None
    history: list[CredentialLogEntry] = []
    if saved is not None:
        row = next((r for r in await _rows(rt) if r.name == saved), None)
        history = await rt.credentials.history(name=saved, limit=HISTORY_SHOWN)
    return render(
        request,
        "email_credential.html",
        visitor,
        status_code=status_code,
        title=saved or "New credential",
        tab="credentials",
        saved=saved,
        row=row,
        history=history,
        delegated=values.get("flow") in DELEGATED,
        groups=grouped(shown(fields, values)),
        fields=shown(fields, values),
        values=values,
        errors=errors or {},
        placeholders=_placeholders(values),
        form_id="credential-form",
        refresh=DRAFT,
    )


def _placeholders(values: Mapping[str, Any]) -> dict[str, str]:
    """Placeholders that follow another field (the authority: the chosen provider's), as the
    model declares them."""
    return {
        spec.name: text
        for spec in field_specs(Credential)
        if spec.placeholder_by and (text := spec.placeholder_for(values))
    }


@router.get("/new-credential")
async def new_credential_page(request: Request, rt: RuntimeDep, visitor: Administering) -> Response:
    """An empty credential form (the model's defaults)."""
    values = stored_values(FIELDS, None)
    return await _form_page(request, rt, visitor, saved=None, values=values)


@router.get("/credentials/{name}")
async def credential_page(
    request: Request, name: str, rt: RuntimeDep, visitor: Viewing
) -> HTMLResponse:
    """One credential: its form (admins) or its settings (everyone else), its health and
    the accounts that use it."""
    values = stored_values(EDIT_FIELDS, await _credential(rt, name))
    return await _form_page(request, rt, visitor, saved=name, values=values)


@dataclass(frozen=True)
class _Draft:
    """A posted credential form: which credential it edits, what the inputs show, the values."""

    saved: str | None
    values: dict[str, Any]
    data: dict[str, Any]


async def _draft(rt: Runtime, posted: Posted, *, redraw: bool = False) -> _Draft:
    form = texts(posted.data)
    offered = FLOWS.get(form.get("provider", ""), ())
    if redraw and offered and form.get("flow") not in offered:
        # The provider was just changed: show its first flow, not one it does not offer (a
        # static token has only api_token). A save is checked as posted.
        form["flow"] = offered[0]
    saved = form.get("saved") or None
    fields = FIELDS if saved is None else EDIT_FIELDS
    stored = stored_values(fields, await _credential(rt, saved) if saved else None)
    values = posted_values(fields, form, stored)
    return _Draft(saved=saved, values=values, data=parse_form(fields, form, values))


@router.post("/credential-draft")
async def redraw(request: Request, rt: RuntimeDep, posted: AdminForm) -> Response:
    """The form again with the posted values, its fields those of the chosen provider and
    flow (htmx swaps it in on a change; without JavaScript a button posts here)."""
    draft = await _draft(rt, posted, redraw=True)
    return await _form_page(request, rt, posted.visitor, saved=draft.saved, values=draft.values)


async def _save(request: Request, rt: Runtime, posted: Posted, *, create: bool) -> Response:
    draft = await _draft(rt, posted)
    base = {} if create else (await _credential(rt, str(draft.saved))).model_dump()
    # A secret left empty is not in ``data``: checked with the stored one, written without
    # it, so it is kept.
    data = draft.data
    names = [n for n in data if n != "name" or create]
    checked = check(Credential, {**base, **data}, names)
    name = str(data.get("name") if create else draft.saved)
    who = posted.visitor.name
    status_code = await write_checked(
        checked,
        lambda values: (
            add_credential(rt, fields=values, who=who)
            if create
            else change_credential(rt, name=name, fields=values, who=who)
        ),
    )
    if status_code is not None:
        return await _form_page(
            request, rt, posted.visitor, saved=draft.saved, values=draft.values,
            errors=checked.errors, status_code=status_code,
        )  # fmt: skip
    done = "added" if create else "saved"
    return after_post(request, f"{CREDENTIALS}/{name}", f"Credential {name} {done}.")


@router.post("/new-credential")
async def add(request: Request, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Add the credential the form describes."""
    return await _save(request, rt, posted, create=True)


@router.post("/credentials/{name}")
async def change(request: Request, name: str, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Save the form's changes (an empty secret keeps the stored one); a changed app
    registration needs consent again."""
    await _credential(rt, name)
    if posted.text("saved") != name:
        raise NotFound(f"the form is not credential {name!r}'s")
    return await _save(request, rt, posted, create=False)


@router.get("/credentials/{name}/delete")
async def confirm_delete(
    request: Request, name: str, rt: RuntimeDep, visitor: Administering
) -> HTMLResponse:
    """Ask before deleting, naming the accounts that still use it."""
    current = await show_credential(rt, name=name)
    return render(
        request, "email_credential_delete.html", visitor, title=f"Delete {name}",
        tab="credentials", name=name, used_by=current.used_by,
    )  # fmt: skip


@router.post("/credentials/{name}/delete")
async def delete(request: Request, name: str, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Delete the credential and its tokens; refused, with the reason, while in use."""
    try:
        await delete_credential(rt, name=name, who=posted.visitor.name)
    except (ConfigRejected, NotFound) as refused:
        return after_post(request, f"{CREDENTIALS}/{name}", f"Not deleted: {refused}", error=True)
    return after_post(request, CREDENTIALS, f"Credential {name} deleted.")


@router.post("/credentials/{name}/authorize")
async def authorize(request: Request, name: str, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Start consent: the browser flow sends the administrator to the provider (which sends
    them back to ``/oauth/callback``); the device flow shows the code and waits for it."""
    try:
        consenting, device_flow = await start_consent(rt, name=name, who=posted.visitor.name)
    except ConfigRejected as refused:
        return after_post(request, f"{CREDENTIALS}/{name}", f"Not started: {refused}", error=True)
    if device_flow is None:
        assert consenting.url is not None
        return RedirectResponse(consenting.url, status_code=303)
    finish_device_consent_later(rt, name=name, flow=device_flow)
    return render(
        request, "email_credential_consent.html", posted.visitor, title=f"Authorize {name}",
        tab="credentials", name=name, consenting=consenting,
        state=await rt.credentials.state(name=name),
    )  # fmt: skip


@router.get("/credentials/{name}/consent")
async def consent_state(
    request: Request, name: str, rt: RuntimeDep, visitor: Viewing
) -> HTMLResponse:
    """The consent's state as the device-code page polls it (htmx, every few seconds until
    granted or failing)."""
    state: CredentialState = await rt.credentials.state(name=name)
    return render(request, "_credential_consent.html", visitor, name=name, state=state)
