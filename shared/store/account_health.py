"""Per account: how its credentials and fetching are doing, as the fetcher last saw it.

One document per account in ``account_health`` (``_id`` is the account name, so it needs no
index of its own): when a round last logged in and fetched, the OAuth 2.0 token's time and
expiry, the last error and the last refused credential with their times, and how many rounds
in a row failed. It holds no secret: errors are the fetcher's texts, which never carry one.
An operator reads it through the config API and CLI; an expired client secret or a changed
password shows here before anyone misses mail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase

from shared.store._base import Doc
from shared.store._errors import Repo


class AccountHealth(BaseModel):
    """What is known about an account; all None until its first round."""

    account: str
    last_fetch_at: datetime | None = None
    """The last round that logged in and took the new mail without an error."""
    last_token_at: datetime | None = None
    """OAuth 2.0: when the current access token was issued to Mailroom."""
    token_expires_at: datetime | None = None
    last_auth_error: str | None = None
    """The last time the server refused the login or the issuer refused a token, and why."""
    last_auth_error_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    failures: int = 0
    """Rounds in a row that failed; 0 after a good one."""
    updated_at: datetime | None = None
    credential: str | None = None
    """The named OAuth 2.0 credential the account signs in with, if any."""
    credential_status: str | None = None
    """That credential's health: ok, warning (something expires soon) or failing."""
    credential_problems: list[str] = []
    """What is wrong with it or expires soon, as the alerts say it."""


class AccountHealthRepo(Repo):
    """Account health documents, one per account."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db["account_health"]

    async def record(
        self,
        *,
        account: str,
        at: datetime,
        error: str | None = None,
        auth_error: bool = False,
        failures: int = 0,
        token_at: datetime | None = None,
        token_expires_at: datetime | None = None,
    ) -> None:
        """Record one round: good (``error`` None) or failed, with the token's times when
        the account has OAuth 2.0 credentials."""
        fields: dict[str, Any] = {"account": account, "failures": failures, "updated_at": at}
        if error is None:
            fields["last_fetch_at"] = at
        else:
            fields |= {"last_error": error, "last_error_at": at}
            if auth_error:
                fields |= {"last_auth_error": error, "last_auth_error_at": at}
        if token_at is not None:
            fields |= {"last_token_at": token_at, "token_expires_at": token_expires_at}
        await self._coll.update_one({"_id": account}, {"$set": fields}, upsert=True)

    async def get(self, *, account: str) -> AccountHealth:
        """The account's health, or an empty one if no round has run yet."""
        doc = await self._coll.find_one({"_id": account}, {"_id": 0})
        return AccountHealth.model_validate(doc) if doc else AccountHealth(account=account)

    async def many(self, *, accounts: list[str]) -> list[AccountHealth]:
        """The health of each named account, in the given order."""
        found = {
            doc["account"]: AccountHealth.model_validate(doc)
            async for doc in self._coll.find({"_id": {"$in": accounts}}, {"_id": 0})
        }
        return [found.get(name) or AccountHealth(account=name) for name in accounts]
