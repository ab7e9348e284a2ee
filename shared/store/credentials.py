"""Named OAuth 2.0 credentials, their state and their audit, in three collections.

``credentials`` holds each credential as entered (``_id`` is its name); its secrets are
sealed with the caller's :class:`SecretBox` before they reach MongoDB and opened only when
read back into a :class:`Credential`. ``credential_state`` holds what using it taught
Mailroom (:class:`CredentialState`), and msal's or Google's token cache, sealed as well,
under a ``version`` that each write of the cache bumps: a fetcher writes its refreshed cache
only over the version it read (:meth:`CredentialRepo.save_cache`), so two instances that
refreshed at once cannot overwrite each other's newer refresh token unnoticed.
``credential_log`` records who added, changed, deleted or authorized a credential (the
fields' names, never their values).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import SecretStr
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.errors import ConfigRejected, NotFound
from shared.models.credentials import (
    Consent,
    Credential,
    CredentialLogEntry,
    CredentialState,
)
from shared.secrets import SecretBox, is_sealed
from shared.store._base import Doc
from shared.store._errors import Repo

SECRET_FIELDS = ("client_secret", "certificate", "service_account_key", "token")
_STATE_FIELDS = {"_id": 0, "cache": 0, "pending": 0, "pending_state": 0}


class CredentialRepo(Repo):
    """Credentials (sealed secrets) and their state (sealed token cache, versioned)."""

    def __init__(self, db: AsyncDatabase[Doc], box: SecretBox) -> None:
        self._defs = db["credentials"]
        self._state = db["credential_state"]
        self._alerts = db["credential_alerts"]
        self._log = db["credential_log"]
        self._box = box

    def _sealed(self, credential: Credential) -> Doc:
        doc: Doc = credential.model_dump(mode="json")
        for name in SECRET_FIELDS:
            value = getattr(credential, name)
            doc[name] = None if value is None else self._box.seal(value.get_secret_value())
        doc["_id"] = credential.name
        return doc

    def _opened(self, doc: Doc) -> Credential:
        values = {k: v for k, v in doc.items() if k != "_id"}
        for name in SECRET_FIELDS:
            if is_sealed(values.get(name)):
                values[name] = self._box.open(values[name])
        return Credential.model_validate(values)

    async def add(self, *, credential: Credential, consent: Consent) -> None:
        """Store a new credential with a fresh state; Duplicate when the name is taken."""
        existing = await self._defs.find_one({"_id": credential.name}, {"_id": 1})
        if existing is not None:
            raise ConfigRejected(f"credential {credential.name!r} already exists")
        await self._defs.insert_one(self._sealed(credential))
        state = CredentialState(name=credential.name, consent=consent)
        await self._state.replace_one(
            {"_id": credential.name}, {**state.model_dump(), "cache": None}, upsert=True
        )

    async def restore(
        self,
        *,
        credential: Credential,
        consent: Consent | None,
        consented_by: str | None = None,
        refresh_token_at: datetime | None = None,
        cache: str | None = None,
    ) -> None:
        """Store an imported credential, new or over the one of its name. With ``consent``
        the state takes it with ``consented_by``, ``refresh_token_at`` and ``cache`` (the
        token cache that came with the import, or none); without, the state here stays."""
        await self._defs.replace_one(
            {"_id": credential.name}, self._sealed(credential), upsert=True
        )
        if consent is None:
            return
        sealed = None if cache is None else self._box.seal(cache)
        fields = {
            "name": credential.name,
            "consent": consent,
            "consented_by": consented_by,
            "refresh_token_at": refresh_token_at,
        }
        # The version moves on so that a fetcher holding the old cache does not write it back.
        await self._state.update_one(
            {"_id": credential.name},
            {"$set": {**fields, "cache": sealed}, "$inc": {"version": 1}},
            upsert=True,
        )

    async def reset_consent(self, *, name: str, consent: Consent) -> None:
        """Drop the token cache (the app registration changed) and set the consent."""
        await self._state.update_one(
            {"_id": name},
            {"$set": {"name": name, "cache": None, "consent": consent}, "$inc": {"version": 1}},
            upsert=True,
        )

    async def replace(self, *, credential: Credential) -> None:
        """Store a changed credential (its state stays); NotFound when it does not exist."""
        result = await self._defs.replace_one({"_id": credential.name}, self._sealed(credential))
        if result.matched_count == 0:
            raise NotFound(f"no credential {credential.name!r}")

    async def get(self, *, name: str) -> Credential:
        """The credential with its secrets opened; NotFound when it does not exist."""
        doc = await self._defs.find_one({"_id": name})
        if doc is None:
            raise NotFound(f"no credential {name!r}")
        return self._opened(doc)

    async def all(self) -> list[Credential]:
        """Every credential, by name."""
        return [self._opened(doc) async for doc in self._defs.find({}).sort("_id", 1)]

    async def delete(self, *, name: str) -> None:
        """Forget a credential, its state and its token cache; NotFound when unknown."""
        result = await self._defs.delete_one({"_id": name})
        if result.deleted_count == 0:
            raise NotFound(f"no credential {name!r}")
        await self._state.delete_one({"_id": name})

    async def state(self, *, name: str) -> CredentialState:
        """The credential's state (an empty one when none was recorded)."""
        doc = await self._state.find_one({"_id": name}, _STATE_FIELDS)
        return CredentialState.model_validate(doc) if doc else CredentialState(name=name)

    async def states(self) -> list[CredentialState]:
        """The state of every credential that has one, by name."""
        cursor = self._state.find({}, _STATE_FIELDS).sort("name", 1)
        return [CredentialState.model_validate(doc) async for doc in cursor]

    async def note(self, *, name: str, **fields: Any) -> None:
        """Set fields of the credential's state (times, consent, last error)."""
        unknown = set(fields) - set(CredentialState.model_fields)
        if unknown or "version" in fields:
            raise ValueError(f"not a state field: {', '.join(sorted(unknown)) or 'version'}")
        await self._state.update_one({"_id": name}, {"$set": {"name": name, **fields}}, upsert=True)

    async def cache(self, *, name: str) -> tuple[SecretStr | None, int]:
        """The sealed token cache opened, and the version it was written with."""
        doc = await self._state.find_one({"_id": name}, {"cache": 1, "version": 1})
        if doc is None:
            return None, 0
        sealed = doc.get("cache")
        opened = self._box.open(sealed) if sealed is not None and is_sealed(sealed) else None
        return opened, int(doc.get("version", 0))

    async def save_cache(
        self, *, name: str, cache: str | None, version: int, **fields: Any
    ) -> int | None:
        """Write the token cache (and state ``fields``) if it is still at ``version``; the
        new version, or None when another instance wrote first (read it again)."""
        sealed = None if cache is None else self._box.seal(cache)
        doc = await self._state.find_one_and_update(
            {"_id": name, "version": version},
            {"$set": {"cache": sealed, **fields}, "$inc": {"version": 1}},
            projection={"version": 1},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else int(doc["version"])

    async def audit(self, *, entry: CredentialLogEntry) -> None:
        """Record an administrator's action on a credential (kept after its deletion)."""
        await self._log.insert_one(entry.model_dump())

    async def history(self, *, name: str, limit: int = 20) -> list[CredentialLogEntry]:
        """The latest audit entries of credential ``name``, newest first."""
        cursor = self._log.find({"name": name}, {"_id": 0}).sort("at", -1).limit(limit)
        return [CredentialLogEntry.model_validate(doc) async for doc in cursor]

    async def first_alert(self, *, key: str, at: datetime) -> bool:
        """Claim the alert ``key`` (credential, condition, day): True for the first caller
        only, so that an alert goes out once whatever the number of instances."""
        try:
            await self._alerts.insert_one({"_id": key, "at": at})
        except DuplicateKeyError:
            return False
        return True

    async def begin_consent(self, *, name: str, state: str, flow: str) -> None:
        """Keep a consent in progress (msal's flow with its PKCE verifier, sealed) under the
        ``state`` the redirect will bring back."""
        await self._state.update_one(
            {"_id": name},
            {"$set": {"name": name, "pending": self._box.seal(flow), "pending_state": state}},
            upsert=True,
        )

    async def take_consent(self, *, state: str) -> tuple[str, str] | None:
        """The credential name and flow of the consent waiting for ``state``, removed so
        that a redirect is redeemed once; None when no consent waits for it."""
        doc = await self._state.find_one_and_update(
            {"pending_state": state},
            {"$unset": {"pending": "", "pending_state": ""}},
            projection={"pending": 1, "name": 1},
        )
        if doc is None or not is_sealed(doc.get("pending")):
            return None
        return str(doc["name"]), self._box.open(doc["pending"]).get_secret_value()

    async def consented(self, *, name: str, cache: str, user: str | None, at: datetime) -> None:
        """Store a new consent's token cache (whatever version was there: it replaces any
        older refresh token) and mark the consent granted."""
        fields: Doc = {
            "cache": self._box.seal(cache),
            "consent": "granted",
            "consented_by": user,
            "refresh_token_at": at,
            "last_token_at": at,
            "last_error": None,
            "last_error_at": None,
        }
        await self._state.update_one(
            {"_id": name}, {"$set": {"name": name, **fields}, "$inc": {"version": 1}}, upsert=True
        )
