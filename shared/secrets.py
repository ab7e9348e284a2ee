"""Encryption of secrets at rest (Fernet, key derived from MAILROOM_SECRET_KEY)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from shared.errors import SecretsUnavailable

SECRET_MARKER = "$secret"  # noqa: S105 - a key name, not a secret


class SecretBox:
    """Encrypts and decrypts property secrets.

    Any high-entropy string works as the key: it is hashed to the 32 bytes Fernet needs, so
    operators can use ``openssl rand -hex 32`` or ``mailroom secret-key``.
    """

    def __init__(self, key: SecretStr | None) -> None:
        self._fernet: Fernet | None = None
        if key is not None:
            digest = hashlib.sha256(key.get_secret_value().encode()).digest()
            self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def _require(self) -> Fernet:
        if self._fernet is None:
            raise SecretsUnavailable(
                "MAILROOM_SECRET_KEY is not set: secrets (passwords) cannot be stored or read. "
                "Set it to a long random string (e.g. `openssl rand -hex 32`) in every service."
            )
        return self._fernet

    def seal(self, secret: str) -> dict[str, str]:
        """The stored form of ``secret``."""
        return {SECRET_MARKER: self._require().encrypt(secret.encode()).decode()}

    def open(self, sealed: dict[str, str]) -> SecretStr:
        """The secret inside a stored form."""
        try:
            return SecretStr(self._require().decrypt(sealed[SECRET_MARKER].encode()).decode())
        except InvalidToken as exc:
            raise SecretsUnavailable(
                "a stored secret cannot be decrypted: MAILROOM_SECRET_KEY differs from the key "
                "it was written with"
            ) from exc


def is_sealed(value: object) -> bool:
    """True for the stored form of a secret."""
    return isinstance(value, dict) and set(value) == {SECRET_MARKER}
