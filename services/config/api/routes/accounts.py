"""Incoming accounts, by name: list, show, add, change, copy, rename, activate, deactivate,
delete, test."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from services.config.account_probe import check_account
from services.config.accounts import copy_account, delete_account, rename_account, set_enabled
from services.config.api.deps import Admin, Operator, RuntimeDep, Viewer
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
from shared.errors import NotFound
from shared.mailbox.probe import ConnectionReport

router = APIRouter(prefix="/accounts", tags=["accounts"])

Name = Annotated[str, Path(max_length=64, description="The account's name.")]


@router.get("")
async def list_accounts(rt: RuntimeDep, _: Viewer) -> list[AccountListed]:
    """Every incoming account, with the fetcher instance that owns it and its last fetch."""
    return await accounts_listed(rt)


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
async def test_account(name: Name, rt: RuntimeDep, _: Operator) -> ConnectionReport:
    """Test connection: connect, authenticate, select the folder; report the message count
    or the technical error (``ok`` false; the request itself succeeds)."""
    return await check_account(rt, name=name)
