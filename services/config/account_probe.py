"""Test connection for an incoming account: the functions the API, the CLI and the console
call, for a saved account and for one being edited (before it is saved)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from shared.config_views import describe_validation_error
from shared.errors import ConfigRejected, NotFound
from shared.mailbox.probe import ConnectionReport, FolderReport, check_connection, list_folders
from shared.models.config import IncomingAccount
from shared.runtime import Runtime

DRAFT_NAME = "draft"
"""The name a new account is tested under before it has one."""


async def check_account(rt: Runtime, *, name: str) -> ConnectionReport:
    """Connect, authenticate, select the folder; the message count or the technical error."""
    config = rt.config
    if name not in config.accounts:
        raise NotFound(f"no account {name!r}")
    return await check_connection(
        config.accounts[name],
        timeout=config.settings.connect_timeout_seconds,
        credentials=rt.credentials,
    )


def draft_account(
    rt: Runtime, *, fields: Mapping[str, Any], saved: str | None = None
) -> IncomingAccount:
    """The account ``fields`` describe, over the saved account ``saved`` (whose stored
    secrets stand in for those left out); ConfigRejected naming the field otherwise."""
    base: dict[str, Any] = {}
    if saved is not None:
        if saved not in rt.config.accounts:
            raise NotFound(f"no account {saved!r}")
        base = rt.config.accounts[saved].model_dump()
    merged = {**base, **fields}
    merged["name"] = merged.get("name") or saved or DRAFT_NAME
    try:
        return IncomingAccount.model_validate(merged)
    except ValidationError as exc:
        raise ConfigRejected(describe_validation_error("account", exc)) from None


async def check_unsaved(
    rt: Runtime, *, fields: Mapping[str, Any], saved: str | None = None
) -> ConnectionReport:
    """Test connection with the values of a form before they are saved (see
    :func:`draft_account`): what saving them would make the fetcher do."""
    account = draft_account(rt, fields=fields, saved=saved)
    timeout = rt.config.settings.connect_timeout_seconds
    return await check_connection(account, timeout=timeout, credentials=rt.credentials)


async def folders_unsaved(
    rt: Runtime, *, fields: Mapping[str, Any], saved: str | None = None
) -> FolderReport:
    """The folders the account ``fields`` describe can take mail from (IMAP LIST), for the
    form's folder drop-down; the folder itself need not exist yet."""
    account = draft_account(rt, fields={**fields, "folder": "INBOX"}, saved=saved)
    timeout = rt.config.settings.connect_timeout_seconds
    return await list_folders(account, timeout=timeout, credentials=rt.credentials)
