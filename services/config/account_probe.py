"""Test connection for an incoming account: the functions the API, the CLI and the console
call, for a saved account and for one being edited (before it is saved).

An account with its own outgoing server has it tested too (connect, secure, authenticate),
beside the incoming one; :func:`send_test_mail` sends a real mail through the account's
outgoing path (its own server, else the global connection, with its From settings) and
reports the server's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from services.sender.probe import ProbeReport, probe
from services.sender.route import routed
from services.sender.smtp import effective_connection
from shared.config_views import SECRET_FIELDS, describe_validation_error
from shared.errors import ConfigRejected, NotFound
from shared.mailbox.probe import ConnectionReport, FolderReport, check_connection, list_folders
from shared.models.config import IncomingAccount
from shared.runtime import Runtime

DRAFT_NAME = "draft"
"""The name a new account is tested under before it has one."""


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
    # A secret left empty keeps the stored one, as saving would (secrets are never shown).
    entered = {k: v for k, v in fields.items() if not (k in SECRET_FIELDS and v is None)}
    merged = {**base, **entered}
    merged["name"] = merged.get("name") or saved or DRAFT_NAME
    try:
        return IncomingAccount.model_validate(merged)
    except ValidationError as exc:
        raise ConfigRejected(describe_validation_error("account", exc)) from None


async def folders_unsaved(
    rt: Runtime, *, fields: Mapping[str, Any], saved: str | None = None
) -> FolderReport:
    """The folders the account ``fields`` describe can take mail from (IMAP LIST), for the
    form's folder drop-down; the folder itself need not exist yet."""
    account = draft_account(rt, fields={**fields, "folder": "INBOX"}, saved=saved)
    timeout = rt.config.settings.connect_timeout_seconds
    return await list_folders(account, timeout=timeout, credentials=rt.credentials)


@dataclass(frozen=True)
class AccountCheck:
    """Both sides of an account's test: the incoming server, and its own outgoing server
    (None when it sends through the global connection)."""

    incoming: ConnectionReport
    outgoing: ProbeReport | None

    @property
    def ok(self) -> bool:
        """Whether every server tested works."""
        return self.incoming.ok and (self.outgoing is None or self.outgoing.ok)


def _saved(rt: Runtime, name: str) -> IncomingAccount:
    if name not in rt.config.accounts:
        raise NotFound(f"no account {name!r}")
    return rt.config.accounts[name]


async def check_both(rt: Runtime, account: IncomingAccount) -> AccountCheck:
    """Test the account's incoming server and, when it has one, its own outgoing server,
    at the same time; server-side failures are in the reports, never raised."""
    config = rt.config
    own = account.outgoing_connection(config.outgoing)
    outgoing = (
        probe(own, routed(config, account), credentials=rt.credentials) if own is not None else None
    )
    incoming = check_connection(
        account, timeout=config.settings.connect_timeout_seconds, credentials=rt.credentials
    )
    if outgoing is None:
        return AccountCheck(incoming=await incoming, outgoing=None)
    checked_in, checked_out = await asyncio.gather(incoming, outgoing)
    return AccountCheck(incoming=checked_in, outgoing=checked_out)


async def check_saved(rt: Runtime, *, name: str) -> AccountCheck:
    """Test the saved account ``name``, both sides (see :func:`check_both`)."""
    return await check_both(rt, _saved(rt, name))


async def check_values(
    rt: Runtime, *, fields: Mapping[str, Any], saved: str | None = None
) -> AccountCheck:
    """Test both sides of the account ``fields`` describe, before anything is saved (over
    the saved account ``saved``, see :func:`draft_account`)."""
    return await check_both(rt, draft_account(rt, fields=fields, saved=saved))


async def folders_of(rt: Runtime, *, name: str) -> FolderReport:
    """The folders of the saved account ``name`` (IMAP LIST; POP3 has only INBOX)."""
    return await folders_unsaved(rt, fields={}, saved=name)


async def send_test_mail(rt: Runtime, *, name: str, to: str) -> ProbeReport:
    """CSM's Test Account: send a real test mail to ``to`` through the account's outgoing
    path (its own server, else the global connection; its From settings) and report the
    server's answer. On a test-archive flavour the mail is not sent and the report says so."""
    config = routed(rt.config, _saved(rt, name))
    connection = effective_connection(config)
    if connection is None:
        raise NotFound(
            f"account {name!r} has no outgoing server of its own and no global outgoing "
            "connection is configured (outgoing/smtp)"
        )
    return await probe(connection, config, send_to=to, credentials=rt.credentials)
