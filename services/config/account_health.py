"""Reading the accounts' health that the fetcher records: one function for API and CLI."""

from __future__ import annotations

from shared.credential_health import check_credentials
from shared.errors import NotFound
from shared.runtime import Runtime
from shared.store.account_health import AccountHealth, AccountHealthRepo


async def read_health(rt: Runtime, *, name: str | None = None) -> list[AccountHealth]:
    """The health of the named account, or of every configured one; an account that never
    had a round shows empty fields. Raises NotFound for an account that is not configured."""
    if name is not None and name not in rt.config.accounts:
        raise NotFound(f"no account {name!r}")
    names = [name] if name is not None else sorted(rt.config.accounts)
    found = await AccountHealthRepo(rt.store.db).many(accounts=names)
    if not any(rt.config.accounts[n].credential for n in names):
        return found
    reports = {r.name: r for r in await check_credentials(rt, alert=False)}
    out = []
    for health in found:
        credential = rt.config.accounts[health.account].credential
        report = reports.get(credential or "")
        if credential is not None:
            health = health.model_copy(
                update={
                    "credential": credential,
                    "credential_status": report.status if report else "failing",
                    "credential_problems": [c.text for c in report.conditions]
                    if report
                    else [f"credential {credential!r} does not exist"],
                }
            )
        out.append(health)
    return out
