"""Test connection: what an operator runs after adding or changing an account."""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from shared.errors import MailroomError
from shared.mailbox import open_mailbox
from shared.models.config import IncomingAccount
from shared.store.credentials import CredentialRepo


@runtime_checkable
class HasFolders(Protocol):
    """A mailbox adapter that can list the account's folders (IMAP, Graph, JMAP): the names
    its ``folder`` and ``move_to_folder`` settings take."""

    async def folders(self) -> list[str]:
        """The account's folders."""
        ...


class ConnectionReport(BaseModel):
    """The outcome: message count and folder facts, or the technical error (secret-free)."""

    account: str
    server: str
    protocol: str
    ok: bool
    message_count: int | None = None
    uidvalidity: int | None = None
    supports_idle: bool | None = None
    error: str | None = None


async def check_connection(
    account: IncomingAccount, *, timeout: float, credentials: CredentialRepo | None = None
) -> ConnectionReport:
    """Connect through the account's registered adapter, authenticate (Basic or OAuth 2.0),
    select the folder, list the folders (every adapter but POP3's) and check
    ``move_to_folder``; never raises for a server-side failure: it is the report's
    ``error``, the server's own words, never a secret."""
    report = ConnectionReport(
        account=account.name,
        server=account.server,
        protocol=account.protocol,
        ok=False,
    )
    mailbox = open_mailbox(account, timeout=timeout, credentials=credentials)
    try:
        # Every command has its own timeout; this bounds the whole (connect, TLS, login,
        # token, select) for a server that trickles.
        status = await asyncio.wait_for(mailbox.connect(), timeout * 3)
        missing = await _check_folders(account, mailbox, timeout)
        if missing is not None:
            return report.model_copy(update={"error": missing})
    except TimeoutError:
        return report.model_copy(update={"error": f"no answer within {timeout * 3:g} s"})
    except MailroomError as exc:
        return report.model_copy(update={"error": str(exc)})
    finally:
        await mailbox.close()
    return report.model_copy(
        update={
            "ok": True,
            "message_count": status.exists,
            "uidvalidity": status.uidvalidity,
            "supports_idle": status.supports_idle,
        }
    )


async def _check_folders(account: IncomingAccount, mailbox: object, timeout: float) -> str | None:
    """Why ``move_to_folder`` cannot take mail (it does not exist), or None. The folders
    are listed whatever the disposal: for Graph's inbox (addressed by its well-known name)
    that is the request that proves the app may read the mailbox."""
    if not isinstance(mailbox, HasFolders):
        return None
    folders = await asyncio.wait_for(mailbox.folders(), timeout * 3)
    target = account.move_to_folder
    if account.after_fetch != "move" or target is None:
        return None
    if _named(target, folders, account.protocol):
        return None
    return (
        f"move_to_folder {target!r} does not exist for {account.username} at "
        f"{account.server}: "
        "create it on the server or choose one of: " + ", ".join(folders)
    )


def _named(target: str, folders: list[str], protocol: str) -> bool:
    """Whether ``target`` names one of ``folders`` as the adapter looks names up: INBOX in
    any case everywhere, every Graph name in any case (Graph's lookup ignores case)."""
    if target.upper() == "INBOX" or target in folders:
        return True
    return protocol == "GRAPH" and target.lower() in {f.lower() for f in folders}


class FolderReport(BaseModel):
    """The account's folders, or why they could not be listed (secret-free)."""

    account: str
    server: str
    folders: list[str] | None = None
    error: str | None = None


async def list_folders(
    account: IncomingAccount, *, timeout: float, credentials: CredentialRepo | None = None
) -> FolderReport:
    """Connect and authenticate like :func:`check_connection`, then list the folders
    (IMAP LIST, Graph's folder list, JMAP ``Mailbox/get``); POP3 has only the inbox. Never
    raises for a server-side failure."""
    report = FolderReport(account=account.name, server=account.server)
    if account.is_pop3:
        return report.model_copy(update={"folders": ["INBOX"]})
    mailbox = open_mailbox(account, timeout=timeout, credentials=credentials)
    assert isinstance(mailbox, HasFolders)  # every adapter but POP3's, see above
    try:
        folders = await asyncio.wait_for(mailbox.folders(), timeout * 3)
    except TimeoutError:
        return report.model_copy(update={"error": f"no answer within {timeout * 3:g} s"})
    except MailroomError as exc:
        return report.model_copy(update={"error": str(exc)})
    finally:
        await mailbox.close()
    return report.model_copy(update={"folders": folders})
