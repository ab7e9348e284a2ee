"""Writing system properties: validate every typed view, store, audit, broadcast.

A write is checked by building the whole configuration as it would be after the write; a
change that breaks any view (a subject template the incoming pattern would not match, an
unknown key, a bad port) is refused with ConfigRejected and nothing is stored. A change that
breaks a guard (no script left that puts mail into cases, see ``services.config.guards``) is
refused the same way unless forced; the audit record of a forced write names what it overrode.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import SecretStr

from services.config.errors import Conflict
from services.config.guards import check_guards
from shared.config_views import (
    ACCOUNTS_MODULE,
    OUTGOING_KEY,
    OUTGOING_MODULE,
    SECRET_FIELDS,
    build_config,
    check_key,
    seal_secrets,
)
from shared.errors import ConfigRejected, NotFound, Transient
from shared.models.config import ACCOUNT_NAME, IncomingAccount, OutgoingConnection
from shared.models.messages import ConfigChanged
from shared.models.records import Property
from shared.runtime import Runtime
from shared.store.properties import mask_secrets


async def set_property(
    rt: Runtime, *, module: str, key: str, value: Any, who: str, force: bool = False
) -> int:
    """Validate and store one property; returns the new configuration version."""
    check_key(module, key)
    stored = seal_secrets(_plain(value), rt.box)
    forced = await check_change(
        rt, add=[Property(module=module, key=key, value=stored)], force=force
    )
    version = await rt.store.properties.put(
        module=module, key=key, value=stored, who=who, forced=forced
    )
    await broadcast(rt, version, module, key, "set")
    return version


async def delete_property(
    rt: Runtime, *, module: str, key: str, who: str, force: bool = False
) -> int:
    """Remove one property (its view falls back to the default)."""
    forced = await check_change(rt, drop=[(module, key)], force=force)
    version = await rt.store.properties.delete(module=module, key=key, who=who, forced=forced)
    if version is None:
        raise NotFound(f"no property {module}/{key}")
    await broadcast(rt, version, module, key, "delete")
    return version


BROKER_WAIT_S = 2.0
"""How long a change waits for a RabbitMQ connection that is being re-established."""
RETELL_S = 6.0
"""How long a stored change's broadcast is tried again: longer than a reconnect (5 s)."""


async def check_change(
    rt: Runtime,
    *,
    drop: Iterable[tuple[str, str]] = (),
    add: Sequence[Property] = (),
    force: bool = False,
) -> str | None:
    """Refuse (ConfigRejected) a change that breaks any typed view: build the whole
    configuration as it would be with the ``drop`` properties (module, key) removed and the
    ``add`` ones stored in place of those of the same name. Then apply the guards, compared
    with the configuration loaded now; returns the guard refusals ``force`` overrode.

    First of all, RabbitMQ must be connected (Transient otherwise, nothing changed): a change
    stored but not broadcast would reach the running services only at their next start.
    """
    if not await rt.broker.ping(timeout=BROKER_WAIT_S):
        raise Transient(
            "RabbitMQ is not reachable, so the running services could not be told of the "
            "change: nothing was changed; try again when it is back"
        )
    replaced = {*drop, *((p.module, p.key) for p in add)}
    current = await rt.store.properties.all()
    candidate = [p for p in current if (p.module, p.key) not in replaced]
    after = build_config([*candidate, *add], box=rt.box, version=0)
    return check_guards(rt.config, after, force=force)


async def list_properties(rt: Runtime) -> list[Property]:
    """Every property, secrets shown as ``***``."""
    props = await rt.store.properties.all()
    return [p.model_copy(update={"value": mask_secrets(p.value)}) for p in props]


async def set_fields(
    rt: Runtime, *, module: str, values: Mapping[str, Any], who: str, force: bool = False
) -> int:
    """Set several keys of a field module (``settings``, ``addresses``, ``processor``).

    All keys are validated together first, so a pattern and its matching template can be
    changed in one call.
    """
    for key in values:
        check_key(module, key)
    forced = await check_change(
        rt,
        add=[Property(module=module, key=k, value=_plain(v)) for k, v in values.items()],
        force=force,
    )
    version = 0
    for key, value in values.items():
        version = await rt.store.properties.put(
            module=module, key=key, value=_plain(value), who=who, forced=forced
        )
    if values:
        await broadcast(rt, version, module, ",".join(values), "set")
    return version


async def put_account(
    rt: Runtime, *, name: str, fields: Mapping[str, Any], who: str, create: bool
) -> IncomingAccount:
    """Add (``create``) or change an incoming account; an omitted password is kept."""
    if not ACCOUNT_NAME.match(name):
        raise ConfigRejected(f"invalid account name {name!r}: use letters, digits, '.', '_', '-'")
    existing = await rt.store.properties.get(module=ACCOUNTS_MODULE, key=name)
    if create and existing is not None:
        raise Conflict(f"account {name!r} exists; change it instead")
    if not create and existing is None:
        raise NotFound(f"no account {name!r}")
    await _known_credential(rt, fields)
    dropped = _credential_switch(fields)
    kept = {k: v for k, v in (existing.value if existing else {}).items() if k not in dropped}
    merged = {**kept, **_updates(fields)}
    merged.pop("name", None)
    await set_property(rt, module=ACCOUNTS_MODULE, key=name, value=merged, who=who)
    return rt.config.accounts[name]


async def set_outgoing(rt: Runtime, *, fields: Mapping[str, Any], who: str) -> OutgoingConnection:
    """Set the outgoing SMTP connection; an omitted password is kept.

    Switching the kind of credentials drops the stored ones of the other kind (secrets are
    never sent back, so a client could not clear them itself): ``credentials_from`` drops
    all own credentials, ``auth: basic`` the OAuth client, ``auth: oauth2`` the password,
    and clearing ``username`` (sending without AUTH) the password.
    """
    await _known_credential(rt, fields)
    existing = await rt.store.properties.get(module=OUTGOING_MODULE, key=OUTGOING_KEY)
    kept = dict(existing.value) if existing else {}
    oauth = ("client_id", "client_secret", "authority", "scope", "oauth_ca_file", "credential")
    if fields.get("credentials_from"):
        dropped: tuple[str, ...] = ("username", "password", "auth", *oauth)
    elif fields.get("auth") == "basic":
        dropped = (*oauth, "credentials_from")
    elif fields.get("auth") == "oauth2":
        dropped = ("password", "credentials_from", *_credential_switch(fields))
    else:
        dropped = _credential_switch(fields)
    if "username" in fields and not fields["username"]:
        dropped = (*dropped, "password")
    merged = {**{k: v for k, v in kept.items() if k not in dropped}, **_updates(fields)}
    await set_property(rt, module=OUTGOING_MODULE, key=OUTGOING_KEY, value=merged, who=who)
    assert rt.config.outgoing is not None
    return rt.config.outgoing


OAUTH_CLIENT = ("client_id", "client_secret", "authority", "scope", "oauth_ca_file")
"""The inline OAuth 2.0 client fields a named credential replaces."""


def _credential_switch(fields: Mapping[str, Any]) -> tuple[str, ...]:
    """The stored fields a change drops when it switches between a named credential and the
    inline OAuth client or Basic auth (a stored secret cannot be cleared by the client: it
    is never sent back)."""
    if fields.get("credential"):
        return OAUTH_CLIENT
    if fields.get("auth") == "basic" or fields.get("client_id"):
        return ("credential",)
    return ()


async def _known_credential(rt: Runtime, fields: Mapping[str, Any]) -> None:
    name = fields.get("credential")
    if not name:
        return
    try:
        await rt.credentials.get(name=name)
    except NotFound:
        raise ConfigRejected(
            f"credential {name!r} does not exist: add it with `mailroom credentials add` "
            "(or POST /credentials) first"
        ) from None


def _updates(fields: Mapping[str, Any]) -> dict[str, Any]:
    # A secret left out (None) means "keep the stored one": the API never returns secrets,
    # so clients cannot send them back.
    return {k: v for k, v in fields.items() if not (k in SECRET_FIELDS and v is None)}


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


async def broadcast(rt: Runtime, version: int, module: str, key: str, action: str) -> None:
    """Load the new configuration here, then tell every running service about it.

    Every write ends here, so the writing process's ``rt.config`` is current as soon as the
    write returns (its own broadcast then finds the version loaded and does nothing).
    """
    # Imported here: the topology is FastStream's, and a CLI listing that imports this
    # module for its reads should not pay for it.
    from shared.broker import BROKER_AWAY
    from shared.topology import CONFIG_EXCHANGE

    await rt.reload_config()
    change = ConfigChanged.model_validate(
        {"version": version, "module": module, "key": key, "action": action}
    )
    deadline = time.monotonic() + RETELL_S
    while True:
        try:
            # Not mandatory: with no service running nobody listens, and services read the
            # whole configuration when they start.
            await rt.broker.publish(change, exchange=CONFIG_EXCHANGE, persist=True, mandatory=False)
            return
        except BROKER_AWAY as exc:
            if time.monotonic() > deadline:
                raise Transient(
                    f"the change is saved (configuration version {version}), but RabbitMQ "
                    f"could not tell the running services ({type(exc).__name__}); they load "
                    "it at their next start or with the next change"
                ) from None
        await asyncio.sleep(0.5)
