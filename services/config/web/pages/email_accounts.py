"""Email configuration → Accounts: the list with each account's health, the account form
(declared by ``IncomingAccount``), Test connection before and after saving, and Copy, Rename,
Activate, Deactivate and Delete. Every action calls the function the API route calls."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, EmailStr, ValidationError

from services.config.account_health import read_health
from services.config.account_probe import (
    AccountCheck,
    check_saved,
    check_values,
    folders_unsaved,
    send_test_mail,
)
from services.config.accounts import copy_account, delete_account, rename_account, set_enabled
from services.config.api.deps import RuntimeDep
from services.config.fetchers import accounts_listed
from services.config.properties import put_account
from services.config.users import address_of
from services.config.web.auth import (
    AdminForm,
    Administering,
    OperatorForm,
    Posted,
    Viewing,
    Visitor,
)
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
from services.sender.probe import ProbeReport
from shared.errors import ConfigRejected, NotFound
from shared.models.config import IncomingAccount
from shared.models.field_specs import account_fields
from shared.runtime import Runtime

router = APIRouter(prefix=f"{CONSOLE}/email", include_in_schema=False)

ACCOUNTS = f"{CONSOLE}/email/accounts"
NEW = f"{CONSOLE}/email/new-account"
DRAFT = f"{CONSOLE}/email/account-draft"
"""Posting the form here re-renders it for the chosen protocol and auth, without saving."""
# Outside /accounts/: "new" is a valid account name.

ORDER = (
    *("name", "protocol", "security", "host", "port", "verify_tls", "ca_file"),
    *("auth", "username", "password", "client_id", "client_secret", "authority", "scope"),
    *("oauth_ca_file", "folder", "start_position", "start_date", "after_fetch"),
    *("move_to_folder", "poll_interval_seconds", "debug", "enabled", "available_to_users"),
    *("outgoing_host", "outgoing_security", "outgoing_port", "outgoing_credentials"),
    *("outgoing_username", "outgoing_password", "from_address", "from_name", "reply_to"),
)
"""The seeds' order: server, then sign-in, then mailbox, then CSM's Outgoing Server and
From Settings pages."""
HINTS: Mapping[str, Mapping[str, Any]] = {
    "debug": {"group": "Mailbox"},
    "enabled": {"group": "Mailbox", "title": "Active (fetch mail from this account)"},
    "available_to_users": {"group": "Mailbox"},
}
"""Where the form shows a field otherwise than its declaration (``IncomingAccount``)."""

FIELDS = form_fields(IncomingAccount, hints=HINTS, order=ORDER)
EDIT_FIELDS = tuple(f for f in FIELDS if f.name != "name")
"""A saved account's name changes by Rename, not by the form."""


class AccountRow(BaseModel):
    """One line of the list: settings, owner and health."""

    name: str
    protocol: str
    host: str
    port: int
    auth: str
    enabled: bool
    owner: str | None
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    failures: int
    next_poll: datetime | None
    credential_expires: datetime | None


async def _rows(rt: Runtime) -> list[AccountRow]:
    health = {h.account: h for h in await read_health(rt)}
    default_poll = rt.config.settings.poll_interval_seconds
    rows = []
    # The public view's fields are derived from the stored model (one declaration per field),
    # so the type checker does not see them: read them from its dump.
    for listed in sorted(await accounts_listed(rt), key=lambda a: a.model_dump()["name"]):
        shown = listed.model_dump()
        h = health.get(shown["name"])
        poll = timedelta(seconds=shown["poll_interval_seconds"] or default_poll)
        success = h.last_fetch_at if h and h.last_fetch_at else listed.last_fetch_at
        rows.append(
            AccountRow(
                name=shown["name"],
                protocol=shown["protocol"],
                host=shown["host"],
                port=shown["port"],
                auth=shown["auth"],
                enabled=shown["enabled"],
                owner=listed.owner,
                last_success=success,
                last_error=h.last_error if h else None,  # sign-in refusals included
                last_error_at=h.last_error_at if h else None,
                failures=h.failures if h else 0,
                # A fetcher holding IDLE is told of news at once; polling comes after this.
                next_poll=success + poll if success and shown["enabled"] else None,
                credential_expires=h.token_expires_at if h else None,
            )
        )
    return rows


@router.get("/accounts")
async def accounts_page(request: Request, rt: RuntimeDep, visitor: Viewing) -> HTMLResponse:
    """The accounts with their health."""
    return render(
        request,
        "email_accounts.html",
        visitor,
        title="Accounts",
        tab="accounts",
        rows=await _rows(rt),
    )


def _placeholders(values: Mapping[str, Any]) -> dict[str, str]:
    """Placeholders that follow another field (the port: the chosen protocol's standard one),
    as the model declares them."""
    return {
        spec.name: shown
        for spec in account_fields()
        if spec.placeholder_by and (shown := spec.placeholder_for(values))
    }


def _account(rt: Runtime, name: str) -> IncomingAccount:
    if name not in rt.config.accounts:
        raise NotFound(f"no account {name!r}")
    return rt.config.accounts[name]


async def _form_page(
    request: Request,
    rt: Runtime,
    visitor: Visitor,
    *,
    saved: str | None,
    values: Mapping[str, Any],
    errors: Mapping[str, str] | None = None,
    report: AccountCheck | None = None,
    folders: list[str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    fields = FIELDS if saved is None else EDIT_FIELDS
    health = (await read_health(rt, name=saved))[0] if saved else None
    return render(
        request,
        "email_account.html",
        visitor,
        status_code=status_code,
        title=saved or "New account",
        tab="accounts",
        saved=saved,
        account=rt.config.accounts.get(saved) if saved else None,
        health=health,
        groups=grouped(shown(fields, values)),
        fields=shown(fields, values),
        values=values,
        errors=errors or {},
        placeholders=_placeholders(values),
        report=report.incoming if report else None,
        outgoing=report.outgoing if report else None,
        form_id="account-form",
        refresh=DRAFT,
        options={"folder": folders} if folders else {},
        actions={"folder": ("Load folders", f"{DRAFT}/folders")},
    )


@router.get("/new-account")
async def new_account_page(request: Request, rt: RuntimeDep, visitor: Administering) -> Response:
    """An empty account form (the model's defaults)."""
    values = stored_values(FIELDS, None)
    return await _form_page(request, rt, visitor, saved=None, values=values)


@router.get("/accounts/{name}")
async def account_page(
    request: Request, name: str, rt: RuntimeDep, visitor: Viewing
) -> HTMLResponse:
    """One account: its form (admins) or its settings (everyone else), and its health."""
    values = stored_values(EDIT_FIELDS, _account(rt, name))
    return await _form_page(request, rt, visitor, saved=name, values=values)


@dataclass(frozen=True)
class _Draft:
    """A posted account form: which account it edits, what the inputs show, the values."""

    saved: str | None
    values: dict[str, Any]
    data: dict[str, Any]


def _draft(rt: Runtime, posted: Posted) -> _Draft:
    form = texts(posted.data)
    saved = form.get("saved") or None
    fields = FIELDS if saved is None else EDIT_FIELDS
    stored = stored_values(fields, _account(rt, saved) if saved else None)
    values = posted_values(fields, form, stored)
    return _Draft(saved=saved, values=values, data=parse_form(fields, form, values))


@router.post("/account-draft")
async def redraw(request: Request, rt: RuntimeDep, posted: AdminForm) -> Response:
    """The form again with the posted values, its fields those of the chosen protocol and
    authentication (htmx swaps it in on a change; without JavaScript a button posts here)."""
    draft = _draft(rt, posted)
    return await _form_page(request, rt, posted.visitor, saved=draft.saved, values=draft.values)


def _test_answer(
    request: Request, visitor: Visitor, report: AccountCheck | None, error: str = ""
) -> HTMLResponse | None:
    """The test's outcome as the fragment htmx puts under the form (None: not htmx)."""
    if request.headers.get("HX-Request") != "true":
        return None
    return render(
        request,
        "_account_test.html",
        visitor,
        report=report.incoming if report else None,
        outgoing=report.outgoing if report else None,
        error=error,
    )


@router.post("/account-draft/test")
async def test_draft(request: Request, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Test connection with the form's values, before saving them; the server's technical
    error is shown as it said it."""
    draft = _draft(rt, posted)
    report: AccountCheck | None = None
    errors: dict[str, str] = {}
    try:
        report = await check_values(rt, fields=draft.data, saved=draft.saved)
    except ConfigRejected as refused:
        errors[""] = f"not tested: {refused}"
    fragment = _test_answer(request, posted.visitor, report, errors.get("", ""))
    if fragment is not None:
        return fragment
    return await _form_page(
        request, rt, posted.visitor, saved=draft.saved, values=draft.values,
        errors=errors, report=report,
    )  # fmt: skip


@router.post("/account-draft/folders")
async def load_folders(request: Request, rt: RuntimeDep, posted: AdminForm) -> Response:
    """The form with the folder as a drop-down of the server's folders (IMAP LIST), with
    the form's current values; why they could not be listed under the folder otherwise."""
    draft = _draft(rt, posted)
    errors: dict[str, str] = {}
    folders: list[str] | None = None
    try:
        found = await folders_unsaved(rt, fields=draft.data, saved=draft.saved)
    except ConfigRejected as refused:
        errors["folder"] = f"folders not listed: {refused}"
    else:
        folders = found.folders
        if found.error is not None:
            errors["folder"] = f"folders not listed: {found.error}"
    return await _form_page(
        request, rt, posted.visitor, saved=draft.saved, values=draft.values,
        errors=errors, folders=folders,
    )  # fmt: skip


async def _save(request: Request, rt: Runtime, posted: Posted, *, create: bool) -> Response:
    draft = _draft(rt, posted)
    base = {} if create else _account(rt, str(draft.saved)).model_dump()
    names = [n for n in draft.data if n != "name"]
    checked = check(IncomingAccount, {**base, **draft.data}, names)
    name = str(draft.data.get("name") if create else draft.saved)
    status_code = await write_checked(
        checked,
        lambda values: put_account(
            rt, name=name, fields=values, who=posted.visitor.name, create=create
        ),
    )
    if status_code is not None:
        return await _form_page(
            request, rt, posted.visitor, saved=draft.saved, values=draft.values,
            errors=checked.errors, status_code=status_code,
        )  # fmt: skip
    done = "added" if create else "saved"
    return after_post(request, f"{ACCOUNTS}/{name}", f"Account {name} {done}.")


@router.post("/new-account")
async def add(request: Request, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Add the account the form describes."""
    return await _save(request, rt, posted, create=True)


@router.post("/accounts/{name}")
async def change(request: Request, name: str, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Save the form's changes to the account (an empty secret keeps the stored one)."""
    _account(rt, name)
    if posted.text("saved") != name:
        raise NotFound(f"the form is not account {name!r}'s")
    return await _save(request, rt, posted, create=False)


@router.post("/accounts/{name}/test")
async def test_saved(request: Request, name: str, rt: RuntimeDep, posted: OperatorForm) -> Response:
    """Test connection of the saved account."""
    report = await check_saved(rt, name=name)
    fragment = _test_answer(request, posted.visitor, report)
    if fragment is not None:
        return fragment
    values = stored_values(EDIT_FIELDS, _account(rt, name))
    return await _form_page(request, rt, posted.visitor, saved=name, values=values, report=report)


@router.post("/accounts/{name}/test-mail")
async def test_mail(request: Request, name: str, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Test Account: a real test mail through the account's outgoing path to the address
    given, or when none to the signed-in user's email; the server's answer."""
    _account(rt, name)
    report: ProbeReport | None = None
    typed = posted.text("to").strip()
    try:
        to = _address(typed) if typed else await address_of(rt, user=posted.visitor.name)
        report = await send_test_mail(rt, name=name, to=to)
    except (ConfigRejected, NotFound) as refused:
        error = f"no test mail sent: {refused}"
    else:
        error = "" if report.ok else f"no test mail sent: {report.error}"
    if request.headers.get("HX-Request") == "true":
        return render(request, "_account_test.html", posted.visitor, test_mail=report, error=error)
    done = f"Test mail {report.test_mail}" if report is not None else ""
    return after_post(request, f"{ACCOUNTS}/{name}", error or done, error=bool(error))


def _address(text: str) -> str:
    """A mail address as typed, or ConfigRejected naming the field."""
    try:
        return str(TestMail(to=text).to)
    except ValidationError:
        raise ConfigRejected(f"to: {text!r} is not a mail address") from None


class TestMail(BaseModel):
    """The test mail form's one field."""

    to: EmailStr


def _back(name: str, posted: Posted) -> str:
    """Where an action returns to: the list when it was started there, else the account."""
    return ACCOUNTS if posted.text("back") == "list" else f"{ACCOUNTS}/{name}"


async def _act(request: Request, url: str, action: Awaitable[object], message: str) -> Response:
    """Run ``action``; back to ``url`` with ``message``, or with the refusal."""
    try:
        await action
    except (ConfigRejected, NotFound) as refused:
        return after_post(request, url, str(refused), error=True)
    return after_post(request, url, message)


@router.post("/accounts/{name}/activate")
async def activate(request: Request, name: str, rt: RuntimeDep, posted: OperatorForm) -> Response:
    """Start fetching from the account."""
    work = set_enabled(rt, name=name, enabled=True, who=posted.visitor.name)
    return await _act(request, _back(name, posted), work, f"Account {name} activated.")


@router.post("/accounts/{name}/deactivate")
async def deactivate(request: Request, name: str, rt: RuntimeDep, posted: OperatorForm) -> Response:
    """Stop fetching from the account; it keeps its settings."""
    work = set_enabled(rt, name=name, enabled=False, who=posted.visitor.name)
    return await _act(request, _back(name, posted), work, f"Account {name} deactivated.")


@router.post("/accounts/{name}/copy")
async def copy(request: Request, name: str, rt: RuntimeDep, posted: AdminForm) -> Response:
    """A deactivated copy under the typed name; the copy's page opens."""
    new = posted.text("new_name").strip()
    try:
        await copy_account(rt, source=name, name=new, who=posted.visitor.name)
    except (ConfigRejected, NotFound) as refused:
        return after_post(request, _back(name, posted), f"Not copied: {refused}", error=True)
    return after_post(
        request, f"{ACCOUNTS}/{new}", f"Account {name} copied to {new} (deactivated)."
    )


@router.post("/accounts/{name}/rename")
async def rename(request: Request, name: str, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Rename the account; what was stored under the old name follows."""
    new = posted.text("new_name").strip()
    try:
        await rename_account(rt, name=name, new_name=new, who=posted.visitor.name)
    except (ConfigRejected, NotFound) as refused:
        return after_post(request, _back(name, posted), f"Not renamed: {refused}", error=True)
    return after_post(request, f"{ACCOUNTS}/{new}", f"Account {name} renamed to {new}.")


@router.get("/accounts/{name}/delete")
async def confirm_delete(
    request: Request, name: str, rt: RuntimeDep, visitor: Administering
) -> HTMLResponse:
    """Ask before deleting (works without JavaScript)."""
    _account(rt, name)
    return render(
        request, "email_account_delete.html", visitor, title=f"Delete {name}", tab="accounts",
        name=name,
    )  # fmt: skip


@router.post("/accounts/{name}/delete")
async def delete(request: Request, name: str, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Delete the account (mail already fetched stays)."""
    work = delete_account(rt, name=name, who=posted.visitor.name)
    return await _act(request, ACCOUNTS, work, f"Account {name} deleted.")
