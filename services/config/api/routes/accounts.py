"""Incoming accounts."""

from __future__ import annotations

from fastapi import APIRouter, status

from services.config.account_probe import check_account
from services.config.api.deps import CallerDep, ReaderDep, RuntimeDep
from services.config.api.schemas import AccountCreate, AccountPublic, AccountUpdate, VersionOut
from services.config.properties import delete_property, put_account
from shared.config_views import ACCOUNTS_MODULE
from shared.errors import NotFound
from shared.mailbox.probe import ConnectionReport

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.get("")
async def list_accounts(rt: RuntimeDep, _: ReaderDep) -> list[AccountPublic]:
    """Every incoming account."""
    config = rt.config
    return [AccountPublic.of(a) for a in config.accounts.values()]


@router.get("/{name}")
async def get_account(name: str, rt: RuntimeDep, _: ReaderDep) -> AccountPublic:
    """One account."""
    config = rt.config
    if name not in config.accounts:
        raise NotFound(f"no account {name!r}")
    return AccountPublic.of(config.accounts[name])


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_account(body: AccountCreate, rt: RuntimeDep, who: CallerDep) -> AccountPublic:
    """Add an account."""
    fields = body.model_dump(exclude={"name"})
    account = await put_account(rt, name=body.name, fields=fields, who=who, create=True)
    return AccountPublic.of(account)


@router.patch("/{name}")
async def change_account(
    name: str, body: AccountUpdate, rt: RuntimeDep, who: CallerDep
) -> AccountPublic:
    """Change an account; omitted fields keep their value."""
    fields = body.model_dump(exclude_unset=True)
    account = await put_account(rt, name=name, fields=fields, who=who, create=False)
    return AccountPublic.of(account)


@router.delete("/{name}")
async def remove_account(name: str, rt: RuntimeDep, who: CallerDep) -> VersionOut:
    """Delete an account (mail already fetched stays)."""
    version = await delete_property(rt, module=ACCOUNTS_MODULE, key=name, who=who)
    return VersionOut(version=version)


@router.post("/{name}/test")
async def test_account(name: str, rt: RuntimeDep, _: CallerDep) -> ConnectionReport:
    """Test connection: connect, authenticate, select the folder; report the message count
    or the technical error (``ok`` false; the request itself succeeds)."""
    return await check_account(rt, name=name)
