"""Test connection for an incoming account: the one function the API and the CLI call."""

from __future__ import annotations

from shared.errors import NotFound
from shared.mailbox.probe import ConnectionReport, check_connection
from shared.runtime import Runtime


async def check_account(rt: Runtime, *, name: str) -> ConnectionReport:
    """Connect, authenticate, select the folder; the message count or the technical error."""
    config = rt.config
    if name not in config.accounts:
        raise NotFound(f"no account {name!r}")
    return await check_connection(
        config.accounts[name], timeout=config.settings.connect_timeout_seconds
    )
