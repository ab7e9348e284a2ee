"""Reading the accounts' health that the fetcher records: one function for API and CLI."""

from __future__ import annotations

from shared.errors import NotFound
from shared.runtime import Runtime
from shared.store.account_health import AccountHealth, AccountHealthRepo


async def read_health(rt: Runtime, *, name: str | None = None) -> list[AccountHealth]:
    """The health of the named account, or of every configured one; an account that never
    had a round shows empty fields. Raises NotFound for an account that is not configured."""
    if name is not None and name not in rt.config.accounts:
        raise NotFound(f"no account {name!r}")
    names = [name] if name is not None else sorted(rt.config.accounts)
    return await AccountHealthRepo(rt.store.db).many(accounts=names)
