"""Account operations beyond add and change: copy, rename, activate, deactivate, delete.

Accounts are referred to by name everywhere. What a rename means for what is stored:

* The account's settings move to the new name (one audited delete of the old property and
  one set of the new, then one broadcast), and ``outgoing/smtp credentials_from`` follows.
* Everything stored under the old name is rewritten to the new one: the stored mails'
  ``account`` field (so twin detection still finds what was fetched), the fetch positions
  (so fetching resumes where it stopped instead of taking the folder again), the desk
  entries (so ``failed list --account NEW`` finds them) and the account's health record.
  A rename is the same mailbox under a new name, not a new account.
* The fetcher lease is not moved: the new name starts a lease of its own.
* A name that still has stored mail or fetch positions (of a deleted account) is refused,
  as mixing two mailboxes' histories under one name would break twin detection.

The references are rewritten before the broadcast, so fetchers start the renamed account
with its position. A fetch running under the old name while the rename happens may store
its last batch under the old name; deactivate a busy account before renaming it to exclude
that window.
"""

from __future__ import annotations

from typing import Any

from services.config.errors import Conflict
from services.config.properties import (
    broadcast,
    check_change,
    delete_property,
    put_account,
    set_property,
)
from shared.config_views import ACCOUNTS_MODULE, OUTGOING_KEY, OUTGOING_MODULE
from shared.errors import ConfigRejected, NotFound
from shared.models.config import ACCOUNT_NAME, IncomingAccount
from shared.models.records import Property
from shared.runtime import Runtime

RENAMED_COLLECTIONS = ("raw_emails", "fetch_state", "failed_mails")
"""Collections whose documents name their account in an ``account`` field."""
HISTORY_COLLECTIONS = ("raw_emails", "fetch_state")
"""A new name must have no documents here (see the module docstring)."""


async def _stored_account(rt: Runtime, name: str) -> Property:
    prop = await rt.store.properties.get(module=ACCOUNTS_MODULE, key=name)
    if prop is None:
        known = ", ".join(sorted(rt.config.accounts)) or "none"
        raise NotFound(f"no account {name!r}; accounts: {known}")
    return prop


async def _free_name(rt: Runtime, name: str) -> None:
    if not ACCOUNT_NAME.match(name):
        raise ConfigRejected(
            f"invalid account name {name!r}: use 1-64 letters, digits, '.', '_', '-', "
            "starting with a letter or digit"
        )
    if await rt.store.properties.get(module=ACCOUNTS_MODULE, key=name) is not None:
        raise Conflict(f"account {name!r} exists; choose another name or delete it first")


async def copy_account(
    rt: Runtime, *, source: str, name: str, who: str, enabled: bool = False
) -> IncomingAccount:
    """A new account with the settings of ``source`` (CSM's copy): secrets are copied in
    their encrypted form, never decrypted; the copy is deactivated unless ``enabled``, so
    it does not fetch before its mailbox settings are changed. Fetch positions, health and
    mail are not copied: the copy is a new mailbox."""
    prop = await _stored_account(rt, source)
    await _free_name(rt, name)
    value: dict[str, Any] = {**prop.value, "enabled": enabled}
    await set_property(rt, module=ACCOUNTS_MODULE, key=name, value=value, who=who)
    return rt.config.accounts[name]


async def rename_account(rt: Runtime, *, name: str, new_name: str, who: str) -> IncomingAccount:
    """Rename an account and rewrite what refers to it (see the module docstring)."""
    prop = await _stored_account(rt, name)
    await _free_name(rt, new_name)
    db = rt.store.db
    for collection in HISTORY_COLLECTIONS:
        if await db[collection].find_one({"account": new_name}, {"_id": 1}) is not None:
            raise Conflict(
                f"mail fetched under the name {new_name!r} (a deleted account) is still "
                "stored; choose another name"
            )
    outgoing = await rt.store.properties.get(module=OUTGOING_MODULE, key=OUTGOING_KEY)
    follows = outgoing is not None and outgoing.value.get("credentials_from") == name
    after = [Property(module=ACCOUNTS_MODULE, key=new_name, value=prop.value)]
    if follows and outgoing is not None:
        moved = {**outgoing.value, "credentials_from": new_name}
        after.append(Property(module=OUTGOING_MODULE, key=OUTGOING_KEY, value=moved))
    await check_change(rt, drop=[(ACCOUNTS_MODULE, name)], add=after)

    properties = rt.store.properties
    await properties.put(module=ACCOUNTS_MODULE, key=new_name, value=prop.value, who=who)
    if follows and outgoing is not None:
        await properties.put(module=OUTGOING_MODULE, key=OUTGOING_KEY, value=moved, who=who)
    await properties.delete(module=ACCOUNTS_MODULE, key=name, who=who)
    for collection in RENAMED_COLLECTIONS:
        await db[collection].update_many({"account": name}, {"$set": {"account": new_name}})
    health = await db["account_health"].find_one({"_id": name})
    if health is not None:
        await db["account_health"].replace_one(
            {"_id": new_name}, {**health, "_id": new_name, "account": new_name}, upsert=True
        )
        await db["account_health"].delete_one({"_id": name})
    await broadcast(rt, await properties.version(), ACCOUNTS_MODULE, f"{name},{new_name}", "set")
    return rt.config.accounts[new_name]


async def set_enabled(rt: Runtime, *, name: str, enabled: bool, who: str) -> IncomingAccount:
    """Activate or deactivate an account (a deactivated one keeps its settings)."""
    return await put_account(rt, name=name, fields={"enabled": enabled}, who=who, create=False)


async def delete_account(rt: Runtime, *, name: str, who: str) -> int:
    """Delete an account; mail already fetched stays stored. Refused while the outgoing
    connection uses its credentials."""
    await _stored_account(rt, name)
    return await delete_property(rt, module=ACCOUNTS_MODULE, key=name, who=who)
