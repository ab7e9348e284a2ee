"""Export and import of the whole configuration as one JSON document.

For moving a configuration between test and production. Secrets are left out unless asked
for; then they are re-encrypted with a key derived from a passphrase (PBKDF2-SHA256, random
salt in the file), because the two systems do not share MAILROOM_SECRET_KEY. An import is
validated as a whole before anything is written, then written property by property (each
audited) and broadcast.

Named OAuth 2.0 credentials travel beside the properties (format version 2), because accounts
name them and an import without them would refuse every such account. Their secrets (client
secret, certificate with its private key, service account key) are handled as the
properties' secrets. Their token cache (msal's or Google's, holding the refresh token) travels
too, encrypted, but only with a passphrase: the consent a user gave then need not be repeated
on the new system; without a passphrase a delegated credential arrives waiting for consent.
An import writes the credentials before the properties, so no account names a credential
that is not stored yet.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from pydantic import BaseModel, ConfigDict, Field

from services.config.credentials import APP_FIELDS, initial_consent, register, validated
from services.config.guards import check_guards
from services.config.properties import broadcast
from shared.config_views import build_config
from shared.errors import ConfigRejected
from shared.models.config import SystemConfig
from shared.models.credentials import Consent, Credential
from shared.models.messages import utcnow
from shared.models.records import Property
from shared.runtime import Runtime
from shared.secrets import is_sealed
from shared.store.credentials import SECRET_FIELDS

KDF_ITERATIONS = 390_000
EXPORTED_SECRET = "$exported"  # noqa: S105 - a key name, not a secret


class ExportedProperty(BaseModel):
    """One property in an export."""

    module: str = Field(max_length=100)
    key: str = Field(max_length=200)
    value: Any


class ExportedCredential(BaseModel):
    """One named credential in an export: its fields with each secret encrypted (or None when
    secrets are excluded), its consent, and with a passphrase its token cache, encrypted."""

    model_config = ConfigDict(extra="forbid")
    fields: dict[str, Any]
    consent: Consent = "not_needed"
    consented_by: str | None = Field(default=None, max_length=320)
    refresh_token_at: datetime | None = None
    """When the refresh token was last renewed: its age keeps counting on the new system
    (Microsoft's lapses after 90 days unused)."""
    token_cache: dict[str, str] | None = None


class ConfigExport(BaseModel):
    """The export document (version 1, written before credentials travelled, still imports)."""

    format: Literal["mailroom-config"] = "mailroom-config"
    format_version: Literal[1, 2] = 2
    exported_at: str = Field(default_factory=lambda: utcnow().isoformat())
    config_version: int = 0
    secrets: Literal["excluded", "encrypted"] = "excluded"
    salt: str | None = None
    properties: list[ExportedProperty] = Field(default_factory=list, max_length=10_000)
    credentials: list[ExportedCredential] = Field(default_factory=list, max_length=1_000)


def _fernet(passphrase: str, salt: bytes) -> Fernet:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=KDF_ITERATIONS)
    return Fernet(base64.urlsafe_b64encode(kdf.derive(passphrase.encode())))


def _encrypt(fernet: Fernet, plain: str) -> dict[str, str]:
    return {EXPORTED_SECRET: fernet.encrypt(plain.encode()).decode()}


def _decrypt(fernet: Fernet, exported: dict[str, str]) -> str:
    try:
        return fernet.decrypt(exported[EXPORTED_SECRET].encode()).decode()
    except (InvalidToken, KeyError):
        raise ConfigRejected("wrong passphrase: the exported secrets cannot be read") from None


def _map_secrets(value: Any, convert: Any) -> Any:
    if isinstance(value, dict):
        if is_sealed(value) or set(value) == {EXPORTED_SECRET}:
            return convert(value)
        return {k: _map_secrets(v, convert) for k, v in value.items()}
    return value


async def export_config(rt: Runtime, *, passphrase: str | None = None) -> ConfigExport:
    """Every property; secrets dropped, or re-encrypted with ``passphrase``."""
    salt = os.urandom(16) if passphrase else None
    fernet = _fernet(passphrase, salt) if passphrase and salt else None

    def convert(sealed: dict[str, str]) -> Any:
        if fernet is None:
            return None
        return _encrypt(fernet, rt.box.open(sealed).get_secret_value())

    props = await rt.store.properties.all()
    return ConfigExport(
        config_version=await rt.store.properties.version(),
        secrets="encrypted" if fernet else "excluded",
        salt=base64.b64encode(salt).decode() if salt else None,
        properties=[
            ExportedProperty(module=p.module, key=p.key, value=_map_secrets(p.value, convert))
            for p in props
        ],
        credentials=await _export_credentials(rt, fernet),
    )


async def _export_credentials(rt: Runtime, fernet: Fernet | None) -> list[ExportedCredential]:
    exported = []
    for credential in await rt.credentials.all():
        fields = credential.model_dump(mode="json", exclude=set(SECRET_FIELDS))
        for name in SECRET_FIELDS:
            secret = getattr(credential, name)
            fields[name] = (
                None
                if fernet is None or secret is None
                else (_encrypt(fernet, secret.get_secret_value()))
            )
        state = await rt.credentials.state(name=credential.name)
        cache, _ = await rt.credentials.cache(name=credential.name)
        token_cache = None
        if fernet is not None and cache is not None:
            token_cache = _encrypt(fernet, cache.get_secret_value())
        exported.append(
            ExportedCredential(
                fields=fields,
                consent=state.consent,
                consented_by=state.consented_by,
                refresh_token_at=state.refresh_token_at,
                token_cache=token_cache,
            )
        )
    return exported


async def import_config(
    rt: Runtime,
    *,
    document: ConfigExport,
    who: str,
    passphrase: str | None = None,
    replace: bool = False,
    force: bool = False,
) -> int:
    """Validate the whole document, then write it; returns the new configuration version.

    A secret left out of the export keeps the value stored here. Credentials are written
    first, then the properties (accounts name credentials); an account naming a credential
    neither in the document nor stored here refuses the document. With ``replace``,
    properties absent from the document are removed (they fall back to their defaults), and
    so are credentials (not by a version 1 document, which holds none). The guards apply as
    to every write (``force`` overrides them, and the audit records say so).
    """
    fernet: Fernet | None = None
    if document.secrets == "encrypted":
        if not passphrase or not document.salt:
            raise ConfigRejected("this export holds encrypted secrets: give its passphrase")
        fernet = _fernet(passphrase, base64.b64decode(document.salt))

    def convert(exported: dict[str, str]) -> Any:
        assert fernet is not None
        return rt.box.seal(_decrypt(fernet, exported))

    current = {(p.module, p.key): p for p in await rt.store.properties.all()}
    incoming: dict[tuple[str, str], Any] = {}
    for item in document.properties:
        value = _map_secrets(item.value, convert) if fernet else item.value
        existing = current.get((item.module, item.key))
        if isinstance(value, dict) and existing is not None and isinstance(existing.value, dict):
            # Secrets excluded from the export arrive as None: keep the ones stored here.
            value = {
                k: existing.value.get(k) if v is None and is_sealed(existing.value.get(k)) else v
                for k, v in value.items()
            }
        incoming[(item.module, item.key)] = value
    result = {} if replace else {k: p.value for k, p in current.items()}
    result.update(incoming)
    candidate = [Property(module=m, key=k, value=v) for (m, k), v in result.items()]
    after = build_config(candidate, box=rt.box, version=0)
    stored = {c.name: c for c in await rt.credentials.all()}
    credentials = _incoming_credentials(document, fernet, stored)
    # A version 1 document knows nothing of credentials: replacing with it keeps them.
    drop = set(stored) - {c.credential.name for c in credentials}
    drop = drop if replace and document.format_version >= 2 else set()
    _check_named(after, (set(stored) - drop) | {c.credential.name for c in credentials})
    forced = check_guards(rt.config, after, force=force)
    for arriving in credentials:
        register(arriving.credential)
        await rt.credentials.restore(
            credential=arriving.credential,
            consent=arriving.consent,
            consented_by=arriving.consented_by,
            refresh_token_at=arriving.refresh_token_at,
            cache=arriving.cache,
        )
    version = await rt.store.properties.version()
    for (module, key), value in incoming.items():
        old = current.get((module, key))
        if old is None or old.value != value:
            version = await rt.store.properties.put(
                module=module, key=key, value=value, who=who, forced=forced
            )
    if replace:
        for module, key in set(current) - set(incoming):
            deleted = await rt.store.properties.delete(
                module=module, key=key, who=who, forced=forced
            )
            version = deleted or version
    for name in drop:
        await rt.credentials.delete(name=name)
    await broadcast(rt, version, "*", "import", "set")
    return version


class _Incoming(BaseModel):
    """A credential of the document, validated, and the state it is stored with."""

    credential: Credential
    consent: Consent | None
    consented_by: str | None = None
    refresh_token_at: datetime | None = None
    cache: str | None = None


def _incoming_credentials(
    document: ConfigExport, fernet: Fernet | None, stored: dict[str, Credential]
) -> list[_Incoming]:
    """Every credential of the document decrypted and validated, nothing written: a secret
    excluded from the export keeps the value stored here; a token cache that came along
    brings its consent; a new or re-registered credential without one waits for consent;
    otherwise the state stored here stays."""
    result: list[_Incoming] = []
    for item in document.credentials:
        name = str(item.fields.get("name"))
        if name in {r.credential.name for r in result}:
            raise ConfigRejected(f"credentials: {name!r} appears twice")
        old = stored.get(name)
        fields = dict(item.fields)
        for field in SECRET_FIELDS:
            value = fields.get(field)
            if isinstance(value, dict) and fernet is not None:
                fields[field] = _decrypt(fernet, value)
            elif value is None and document.secrets == "excluded" and old is not None:
                fields[field] = getattr(old, field)
        try:
            credential = validated(fields)
        except ConfigRejected as refused:
            raise ConfigRejected(f"credentials: {name!r}: {refused}") from None
        if item.token_cache is not None and fernet is not None:
            arriving = _Incoming(
                credential=credential,
                consent=item.consent,
                consented_by=item.consented_by,
                refresh_token_at=item.refresh_token_at,
                cache=_decrypt(fernet, item.token_cache),
            )
            result.append(arriving)
        elif old is None or any(getattr(old, f) != getattr(credential, f) for f in APP_FIELDS):
            result.append(_Incoming(credential=credential, consent=initial_consent(credential)))
        else:
            result.append(_Incoming(credential=credential, consent=None))
    return result


def _check_named(config: SystemConfig, available: set[str]) -> None:
    """Refuse a configuration whose accounts name a credential that will not be stored."""
    named = [(f"incoming account {a.name!r}", a.credential) for a in config.accounts.values()]
    if config.outgoing is not None:
        named.append(("the outgoing connection", config.outgoing.credential))
    for who, credential in named:
        if credential is not None and credential not in available:
            raise ConfigRejected(
                f"{who}: credential {credential!r} is neither in the document nor stored here"
            )
