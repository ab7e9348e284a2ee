"""System properties and their audit log."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.models.messages import utcnow
from shared.models.records import ConfigLogEntry, Property
from shared.secrets import is_sealed
from shared.store._base import Doc, next_sequence
from shared.store._errors import Repo

VERSION_COUNTER = "config_version"


def mask_secrets(value: Any) -> Any:
    """The value as the audit log and the API may show it."""
    if is_sealed(value):
        return "***"
    if isinstance(value, dict):
        return {k: mask_secrets(v) for k, v in value.items()}
    return value


class PropertyRepo(Repo):
    """(module, key, value) with a global version bumped on every change."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._db = db
        self._props = db["properties"]
        self._log = db["config_log"]

    async def all(self) -> list[Property]:
        """Every property."""
        return [Property.model_validate(d) async for d in self._props.find({}, {"_id": 0})]

    async def get(self, *, module: str, key: str) -> Property | None:
        """One property, or None."""
        doc = await self._props.find_one({"module": module, "key": key}, {"_id": 0})
        return Property.model_validate(doc) if doc else None

    async def version(self) -> int:
        """The current global configuration version."""
        doc = await self._db["counters"].find_one({"_id": VERSION_COUNTER})
        return int(doc["seq"]) if doc else 0

    async def put(
        self, *, module: str, key: str, value: Any, who: str, forced: str | None = None
    ) -> int:
        """Write a property (value already sealed), audit it and return the new version.

        ``forced``: the guard refusal this write overrode (recorded in the audit)."""
        old = await self.get(module=module, key=key)
        version = await next_sequence(self._db, VERSION_COUNTER)
        await self._props.update_one(
            {"module": module, "key": key},
            {
                "$set": {
                    "value": value,
                    "version": version,
                    "updated_at": utcnow(),
                    "updated_by": who,
                }
            },
            upsert=True,
        )
        await self._audit(
            module, key, "set", old.value if old else None, value, version, who, forced
        )
        return version

    async def delete(
        self, *, module: str, key: str, who: str, forced: str | None = None
    ) -> int | None:
        """Remove a property; the new version, or None if it did not exist."""
        old = await self.get(module=module, key=key)
        if old is None:
            return None
        version = await next_sequence(self._db, VERSION_COUNTER)
        await self._props.delete_one({"module": module, "key": key})
        await self._audit(module, key, "delete", old.value, None, version, who, forced)
        return version

    async def log(self, *, limit: int = 100) -> list[ConfigLogEntry]:
        """The latest audit entries, newest first."""
        cursor = self._log.find({}, {"_id": 0}).sort("version", -1).limit(limit)
        return [ConfigLogEntry.model_validate(d) async for d in cursor]

    async def _audit(
        self,
        module: str,
        key: str,
        action: str,
        old: Any,
        new: Any,
        version: int,
        who: str,
        forced: str | None,
    ) -> None:
        entry = ConfigLogEntry.model_validate(
            {
                "module": module,
                "key": key,
                "action": action,
                "old": mask_secrets(old),
                "new": mask_secrets(new),
                "version": version,
                "who": who,
                "forced": forced,
            }
        )
        await self._log.insert_one(entry.model_dump())
