"""Incoming accounts, by name: list, show, add, change, copy, rename, activate, deactivate,
delete, test (saved, or from values before they are saved), folders, test mail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Query, status
from pydantic import BaseModel, EmailStr

from services.config.account_probe import (
    AccountCheck,
    check_saved,
    check_values,
    folders_of,
    folders_unsaved,
    send_test_mail,
)
from services.config.accounts import copy_account, delete_account, rename_account, set_enabled
from services.config.api.deps import Admin, Operator, RuntimeDep, SignedIn, Viewer
from services.config.api.routes.outgoing_test import OutgoingTestOut
from services.config.api.schemas import (
    AccountCopy,
    AccountCreate,
    AccountPublic,
    AccountRename,
    AccountUpdate,
    VersionOut,
)
from services.config.fetchers import AccountListed, accounts_listed
from services.config.properties import put_account
from services.config.users import address_of
from shared.errors import NotFound
from shared.mailbox.probe import ConnectionReport, FolderReport
from shared.models.users import allows

router = APIRouter(prefix="/accounts", tags=["accounts"])

Name = Annotated[str, Path(max_length=64, description="The account's name.")]


@router.get("")
async def list_accounts(
    rt: RuntimeDep,
    _: Viewer,
    available_to_users: Annotated[
        bool | None,
        Query(description="Only the accounts made available to users (true) or not (false)."),
    ] = None,
) -> list[AccountListed]:
    """Every incoming account, with the fetcher instance that owns it and its last fetch;
    ``available_to_users=true``: those the case system may offer for agents' mail."""
    listed = await accounts_listed(rt)
    if available_to_users is None:
        return listed
    names = {n for n, a in rt.config.accounts.items() if a.available_to_users is available_to_users}
    return [a for a in listed if a.model_dump()["name"] in names]


class AccountTestOut(ConnectionReport):
    """The incoming server's test (its fields as before) and, for an account with its own
    outgoing server, that server's test; ``ok`` only when every server tested works."""

    outgoing: OutgoingTestOut | None = None

    @classmethod
    def of(cls, check: AccountCheck) -> AccountTestOut:
        """The API's view of an account check."""
        outgoing = OutgoingTestOut.of(check.outgoing) if check.outgoing is not None else None
        fields = check.incoming.model_dump() | {"ok": check.ok, "outgoing": outgoing}
        return cls.model_validate(fields)


class TestMailIn(BaseModel):
    """Where the test mail goes; empty: the signed-in user's ``email`` (else their user name,
    when it is a mail address)."""

    to: EmailStr | None = None


@router.post("/test")
async def test_values(body: AccountCreate, rt: RuntimeDep, _: Admin) -> AccountTestOut:
    """Test connection from values before they are saved (the body of ``POST /accounts``):
    the incoming server and the account's own outgoing server; nothing is stored."""
    return AccountTestOut.of(await check_values(rt, fields=body.model_dump()))


@router.post("/folders")
async def folders_of_values(body: AccountCreate, rt: RuntimeDep, _: Admin) -> FolderReport:
    """The folders the account in the body (unsaved) can take mail from (IMAP LIST), for a
    folder drop-down; ``error`` says why they could not be listed."""
    return await folders_unsaved(rt, fields=body.model_dump())


@router.get("/{name}")
async def get_account(name: Name, rt: RuntimeDep, _: Viewer) -> AccountPublic:
    """One account."""
    if name not in rt.config.accounts:
        raise NotFound(f"no account {name!r}")
    return AccountPublic.of(rt.config.accounts[name])


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_account(body: AccountCreate, rt: RuntimeDep, who: Admin) -> AccountPublic:
    """Add an account (409 when the name is taken)."""
    fields = body.model_dump()
    name = fields.pop("name")
    account = await put_account(rt, name=name, fields=fields, who=who, create=True)
    return AccountPublic.of(account)


@router.patch("/{name}")
async def change_account(
    name: Name, body: AccountUpdate, rt: RuntimeDep, who: Admin
) -> AccountPublic:
    """Change an account; omitted fields keep their value."""
    fields = body.model_dump(exclude_unset=True)
    account = await put_account(rt, name=name, fields=fields, who=who, create=False)
    return AccountPublic.of(account)


@router.post("/{name}/copy", status_code=status.HTTP_201_CREATED)
async def copy(name: Name, body: AccountCopy, rt: RuntimeDep, who: Admin) -> AccountPublic:
    """A new account with this one's settings and secrets (copied encrypted), deactivated
    unless ``enabled``; 409 when the new name is taken."""
    account = await copy_account(rt, source=name, name=body.name, who=who, enabled=body.enabled)
    return AccountPublic.of(account)


@router.post("/{name}/rename")
async def rename(name: Name, body: AccountRename, rt: RuntimeDep, who: Admin) -> AccountPublic:
    """Rename an account; stored mail, fetch positions, desk entries and health follow it.
    409 when the new name is taken."""
    return AccountPublic.of(await rename_account(rt, name=name, new_name=body.name, who=who))


@router.post("/{name}/activate")
async def activate(name: Name, rt: RuntimeDep, who: Operator) -> AccountPublic:
    """Start fetching from the account."""
    return AccountPublic.of(await set_enabled(rt, name=name, enabled=True, who=who))


@router.post("/{name}/deactivate")
async def deactivate(name: Name, rt: RuntimeDep, who: Operator) -> AccountPublic:
    """Stop fetching from the account; it keeps its settings."""
    return AccountPublic.of(await set_enabled(rt, name=name, enabled=False, who=who))


@router.delete("/{name}")
async def remove_account(name: Name, rt: RuntimeDep, who: Admin) -> VersionOut:
    """Delete an account (mail already fetched stays)."""
    return VersionOut(version=await delete_account(rt, name=name, who=who))


@router.post("/{name}/test")
async def test_account(
    name: Name,
    rt: RuntimeDep,
    _: Operator,
    caller: SignedIn,
    body: Annotated[AccountUpdate | None, Body()] = None,
) -> AccountTestOut:
    """Test connection: connect, authenticate, select the folder; report the message count
    or the technical error (``ok`` false; the request itself succeeds). An account with its
    own outgoing server has it tested too (``outgoing``). With a body (fields as for
    ``PATCH``), the values being entered are tested over the saved ones, without saving:
    that is an admin's, as entering them is."""
    fields = body.model_dump(exclude_unset=True) if body is not None else {}
    if not fields:
        return AccountTestOut.of(await check_saved(rt, name=name))
    if not allows(caller.role, "admin"):
        # Values of one's own choosing would make the server connect anywhere with them.
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "testing entered values needs the admin role"
        )
    return AccountTestOut.of(await check_values(rt, fields=fields, saved=name))


@router.get("/{name}/folders")
async def folders(name: Name, rt: RuntimeDep, _: Viewer) -> FolderReport:
    """The account's folders on its server (IMAP LIST; POP3 has only INBOX), for a folder
    drop-down; ``error`` says why they could not be listed."""
    return await folders_of(rt, name=name)


@router.post("/{name}/test-mail")
async def test_mail(
    name: Name, body: TestMailIn, rt: RuntimeDep, _: Admin, caller: SignedIn
) -> OutgoingTestOut:
    """Test Account: send a real test mail through the account's outgoing path (its own
    server, else the global connection, with its From settings) to ``to`` or the signed-in
    user's ``email``, and report the server's answer (``test_mail``)."""
    to = str(body.to) if body.to is not None else await address_of(rt, user=caller.user)
    return OutgoingTestOut.of(await send_test_mail(rt, name=name, to=to))
