"""The credentials manager: named OAuth 2.0 credentials for the API and the CLI.

Admins add, change and delete credentials; accounts (incoming and outgoing) name them in their
``credential`` field. A credential that an account still names is not deleted. Secrets go in
and never come out: what is shown is :class:`CredentialShown`, secrets as set / not set.

Consent (``authorize``) for the delegated flows:

- authorization code (Microsoft with PKCE through msal, Google with PKCE): :func:`start_consent`
  keeps the flow (state, verifier; sealed) in MongoDB and answers the URL to open; the
  provider sends the browser back to the config service's ``/oauth/callback``, which calls
  :func:`finish_consent` — in whichever config instance it lands, and also when the CLI
  started it;
- device code (Microsoft): :func:`start_consent` answers the code and the page to type it
  at; :func:`finish_device_consent` polls the issuer until the user signed in.

The token cache a consent brings is stored sealed (``shared.store.credentials``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from services.config.errors import Conflict
from shared.auth.vendors import (
    Token,
    google_finish_code_flow,
    google_start_code_flow,
    microsoft_finish_code_flow,
    microsoft_finish_device_flow,
    microsoft_start_code_flow,
    microsoft_start_device_flow,
)
from shared.errors import ConfigRejected, MailroomError, NotFound, Permanent
from shared.models.credentials import (
    Consent,
    Credential,
    CredentialAction,
    CredentialLogEntry,
    CredentialState,
)
from shared.redact import REDACTOR
from shared.runtime import Runtime
from shared.store.credentials import SECRET_FIELDS

log = logging.getLogger(__name__)
_DEVICE_CONSENTS: set[asyncio.Task[None]] = set()
"""Device consents being polled; held so that they are not garbage-collected midway."""

APP_FIELDS = (
    "provider",
    "flow",
    "client_id",
    "client_secret",
    "certificate",
    "authority",
    "scopes",
    "token",
)
"""A change to one of these makes an existing consent useless: it is dropped (and a static
credential a server refused is no longer failing once its token is replaced)."""


class CredentialShown(BaseModel):
    """A credential as every surface shows it: secrets only as set / not set, and its state."""

    credential: dict[str, Any]
    state: CredentialState
    used_by: list[str]
    """The accounts (``incoming:<name>``, ``outgoing``) that sign in with it."""


class Consenting(BaseModel):
    """What the administrator does next to consent."""

    name: str
    flow: Literal["authorization_code", "device_code"]
    url: str | None = None
    """Authorization code: open this URL in a browser and sign in as the mailbox user."""
    user_code: str | None = None
    """Device code: type this code at ``verification_uri``."""
    verification_uri: str | None = None
    message: str | None = None


def initial_consent(credential: Credential) -> Consent:
    """The consent a credential starts with: pending for the delegated flows."""
    return "pending" if credential.delegated else "not_needed"


def register(credential: Credential) -> None:
    """Make the redactor hide the credential's secrets from logs and traces."""
    # Logs and traces redact a secret only once it is known to the redactor.
    REDACTOR.register(*(s.get_secret_value() for s in credential.secrets() if s is not None))


def shown(credential: Credential) -> dict[str, Any]:
    """The credential's fields with each secret replaced by ``<name>_set``."""
    data = credential.model_dump(mode="json", exclude=set(SECRET_FIELDS))
    data.update({f"{name}_set": getattr(credential, name) is not None for name in SECRET_FIELDS})
    return data


def users_of(rt: Runtime, name: str) -> list[str]:
    """The accounts of the current configuration that name credential ``name``."""
    config = rt.config
    used = [f"incoming:{a.name}" for a in config.accounts.values() if a.credential == name]
    if config.outgoing is not None and config.outgoing.credential == name:
        used.append("outgoing")
    return used


async def _audit(
    rt: Runtime, name: str, action: CredentialAction, who: str, fields: list[str] | None = None
) -> None:
    entry = CredentialLogEntry(
        name=name, action=action, who=who, at=datetime.now(UTC), fields=fields or []
    )
    await rt.credentials.audit(entry=entry)


def validated(fields: dict[str, Any]) -> Credential:
    """The credential ``fields`` describe; ConfigRejected naming each field that does not fit."""
    try:
        return Credential.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'credential'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigRejected(f"credential refused: {problems}") from None


async def add_credential(rt: Runtime, *, fields: dict[str, Any], who: str) -> Credential:
    """Store a new credential; ConfigRejected when a field or the name does not fit."""
    credential = validated(fields)
    if credential.name in {c.name for c in await rt.credentials.all()}:
        raise Conflict(f"credential {credential.name!r} already exists")
    register(credential)
    await rt.credentials.add(credential=credential, consent=initial_consent(credential))
    given = [f for f in Credential.model_fields if getattr(credential, f) not in (None, ())]
    await _audit(rt, credential.name, "added", who, given)
    log.info("credential %s added by %s", credential.name, who)
    return credential


async def change_credential(
    rt: Runtime, *, name: str, fields: dict[str, Any], who: str
) -> Credential:
    """Change a credential; omitted fields (and omitted secrets) keep their value. A changed
    app registration drops the consent it had."""
    old = await rt.credentials.get(name=name)
    merged = {**old.model_dump(), **{k: v for k, v in fields.items() if k != "name"}}
    credential = validated(merged)
    register(credential)
    await rt.credentials.replace(credential=credential)
    if any(getattr(old, f) != getattr(credential, f) for f in APP_FIELDS):
        await rt.credentials.reset_consent(name=name, consent=initial_consent(credential))
    changed = [f for f in Credential.model_fields if getattr(old, f) != getattr(credential, f)]
    await _audit(rt, name, "changed", who, changed)
    log.info("credential %s changed by %s", name, who)
    return credential


async def delete_credential(rt: Runtime, *, name: str, who: str) -> None:
    """Delete a credential and its tokens; refused while an account names it."""
    used = users_of(rt, name)
    if used:
        raise ConfigRejected(
            f"credential {name!r} is used by {', '.join(used)}: change those first"
        )
    await rt.credentials.delete(name=name)
    await _audit(rt, name, "deleted", who)
    log.info("credential %s deleted by %s", name, who)


async def show_credential(rt: Runtime, *, name: str) -> CredentialShown:
    """One credential as shown, with its state and users."""
    credential = await rt.credentials.get(name=name)
    state = await rt.credentials.state(name=name)
    return CredentialShown(credential=shown(credential), state=state, used_by=users_of(rt, name))


async def list_credentials(rt: Runtime) -> list[CredentialShown]:
    """Every credential as shown."""
    states = {s.name: s for s in await rt.credentials.states()}
    return [
        CredentialShown(
            credential=shown(c),
            state=states.get(c.name) or CredentialState(name=c.name),
            used_by=users_of(rt, c.name),
        )
        for c in await rt.credentials.all()
    ]


async def start_consent(
    rt: Runtime, *, name: str, who: str
) -> tuple[Consenting, dict[str, Any] | None]:
    """Begin consent for a delegated credential: the URL or device code to show, and for the
    device code the flow to hand to :func:`finish_device_consent`."""
    credential = await rt.credentials.get(name=name)
    if not credential.delegated:
        raise ConfigRejected(
            f"credential {name!r} uses flow {credential.flow}, which needs no consent"
        )
    await _audit(rt, name, "authorize", who)
    if credential.flow == "device_code":
        flow = await asyncio.to_thread(microsoft_start_device_flow, credential)
        await rt.credentials.note(name=name, consent="pending")
        consenting = Consenting(
            name=name,
            flow="device_code",
            user_code=str(flow["user_code"]),
            verification_uri=str(flow.get("verification_uri") or ""),
            message=str(flow.get("message") or ""),
        )
        return consenting, flow
    start = (
        microsoft_start_code_flow
        if credential.provider == "microsoft"
        else (google_start_code_flow)
    )
    flow = await asyncio.to_thread(start, credential)
    await rt.credentials.begin_consent(name=name, state=str(flow["state"]), flow=json.dumps(flow))
    return Consenting(name=name, flow="authorization_code", url=str(flow["auth_uri"])), None


async def finish_consent(rt: Runtime, *, query: dict[str, str]) -> CredentialState:
    """The redirect from the provider: redeem its code for the credential whose consent
    waits for its ``state``; NotFound when none does (unknown, used or forged state)."""
    pending = await rt.credentials.take_consent(state=query.get("state", ""))
    if pending is None:
        raise NotFound("no consent waits for this redirect: start it again with authorize")
    name, flow_text = pending
    credential = await rt.credentials.get(name=name)
    flow = json.loads(flow_text)
    finish = (
        microsoft_finish_code_flow
        if credential.provider == "microsoft"
        else (google_finish_code_flow)
    )
    return await _store(rt, credential, lambda: finish(credential, flow, query))


async def finish_device_consent(rt: Runtime, *, name: str, flow: dict[str, Any]) -> CredentialState:
    """Poll the issuer until the user typed the device code (or it expired)."""
    credential = await rt.credentials.get(name=name)
    return await _store(rt, credential, lambda: microsoft_finish_device_flow(credential, flow))


def finish_device_consent_later(rt: Runtime, *, name: str, flow: dict[str, Any]) -> None:
    """Poll for the device consent in the background (the API and the console answer the
    code at once; the user may take up to the code's 15 minutes). The outcome is on the
    credential's state: consent granted, or failing with the issuer's text."""
    # Not a BackgroundTask: those hold the response's end until they finish.
    task = asyncio.create_task(_finish_device(rt, name, dict(flow)))
    _DEVICE_CONSENTS.add(task)
    task.add_done_callback(_DEVICE_CONSENTS.discard)


async def _finish_device(rt: Runtime, name: str, flow: dict[str, Any]) -> None:
    # Nobody waits for this task: its outcome is on the credential's state.
    try:
        await finish_device_consent(rt, name=name, flow=flow)
    except MailroomError as exc:
        log.info("credential %s: device consent not completed: %s", name, type(exc).__name__)


async def _store(
    rt: Runtime, credential: Credential, redeem: Callable[[], Token]
) -> CredentialState:
    name = credential.name
    try:
        token = await asyncio.to_thread(redeem)
    except MailroomError as exc:
        await rt.credentials.note(
            name=name, consent="failing", last_error=str(exc), last_error_at=datetime.now(UTC)
        )
        if isinstance(exc, Permanent):
            raise ConfigRejected(f"consent for credential {name!r} refused: {exc}") from None
        raise
    assert token.cache is not None
    REDACTOR.register(token.access_token)
    await rt.credentials.consented(
        name=name, cache=token.cache, user=token.user, at=datetime.now(UTC)
    )
    log.info("credential %s: consent granted by %s", name, token.user or "the user")
    return await rt.credentials.state(name=name)
