"""Export and import of the whole configuration as one JSON document.

For moving a configuration between test and production. Secrets are left out unless asked
for; then they are re-encrypted with a key derived from a passphrase (PBKDF2-SHA256, random
salt in the file), because the two systems do not share MAILROOM_SECRET_KEY. An import is
validated as a whole before anything is written, then written property by property (each
audited) and broadcast.
"""

from __future__ import annotations

import base64
import os
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from pydantic import BaseModel, Field

from services.config.guards import check_guards
from services.config.properties import broadcast
from shared.config_views import build_config
from shared.errors import ConfigRejected
from shared.models.messages import utcnow
from shared.models.records import Property
from shared.runtime import Runtime
from shared.secrets import is_sealed

KDF_ITERATIONS = 390_000
EXPORTED_SECRET = "$exported"  # noqa: S105 - a key name, not a secret


class ExportedProperty(BaseModel):
    """One property in an export."""

    module: str = Field(max_length=100)
    key: str = Field(max_length=200)
    value: Any


class ConfigExport(BaseModel):
    """The export document."""

    format: Literal["mailroom-config"] = "mailroom-config"
    format_version: Literal[1] = 1
    exported_at: str = Field(default_factory=lambda: utcnow().isoformat())
    config_version: int = 0
    secrets: Literal["excluded", "encrypted"] = "excluded"
    salt: str | None = None
    properties: list[ExportedProperty] = Field(default_factory=list, max_length=10_000)


def _fernet(passphrase: str, salt: bytes) -> Fernet:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=KDF_ITERATIONS)
    return Fernet(base64.urlsafe_b64encode(kdf.derive(passphrase.encode())))


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
        plain = rt.box.open(sealed).get_secret_value()
        return {EXPORTED_SECRET: fernet.encrypt(plain.encode()).decode()}

    props = await rt.store.properties.all()
    return ConfigExport(
        config_version=await rt.store.properties.version(),
        secrets="encrypted" if fernet else "excluded",
        salt=base64.b64encode(salt).decode() if salt else None,
        properties=[
            ExportedProperty(module=p.module, key=p.key, value=_map_secrets(p.value, convert))
            for p in props
        ],
    )


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

    A secret left out of the export keeps the value stored here. With ``replace``, properties
    absent from the document are removed (they fall back to their defaults). The guards apply
    as to every write (``force`` overrides them, and the audit records say so).
    """
    fernet: Fernet | None = None
    if document.secrets == "encrypted":
        if not passphrase or not document.salt:
            raise ConfigRejected("this export holds encrypted secrets: give its passphrase")
        fernet = _fernet(passphrase, base64.b64decode(document.salt))

    def convert(exported: dict[str, str]) -> Any:
        assert fernet is not None
        try:
            plain = fernet.decrypt(exported[EXPORTED_SECRET].encode()).decode()
        except (InvalidToken, KeyError):
            raise ConfigRejected("wrong passphrase: the exported secrets cannot be read") from None
        return rt.box.seal(plain)

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
    forced = check_guards(rt.config, after, force=force)
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
    await broadcast(rt, version, "*", "import", "set")
    return version
