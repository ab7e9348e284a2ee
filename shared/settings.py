"""Process settings from the environment. Everything else is a system property in MongoDB."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class SharedSettings(BaseSettings):
    """What every Mailroom process needs to reach its broker and its store."""

    model_config = SettingsConfigDict(env_prefix="MAILROOM_", env_ignore_empty=True, extra="ignore")

    broker_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    mongodb_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017")
    database: str = "mailroom"
    instance_id: str = Field(default_factory=_default_instance_id)
    secret_key: SecretStr | None = None
    api_token: SecretStr | None = None
    """Bearer token of the admin role (everything)."""
    operator_token: SecretStr | None = None
    """Bearer token of the operator role (failed-mail desk and read-only views)."""
    secret_key_file: Path | None = None
    api_token_file: Path | None = None
    operator_token_file: Path | None = None
    """Files holding the values above (container secrets); used when the value is not set."""
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8025, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _secrets_from_files(self) -> SharedSettings:
        for name in ("secret_key", "api_token", "operator_token"):
            path: Path | None = getattr(self, f"{name}_file")
            if getattr(self, name) is None and path is not None:
                try:
                    value = path.read_text().strip()
                except OSError as exc:
                    raise ValueError(
                        f"MAILROOM_{name.upper()}_FILE {path} cannot be read: {exc.strerror}"
                    ) from None
                object.__setattr__(self, name, SecretStr(value) if value else None)
            secret: SecretStr | None = getattr(self, name)
            if secret is not None and secret.get_secret_value() in {"changethis", "changeme"}:
                raise ValueError(
                    f"MAILROOM_{name.upper()}: replace the placeholder value with a real secret"
                )
        if (
            self.api_token is not None
            and self.operator_token is not None
            and self.api_token.get_secret_value() == self.operator_token.get_secret_value()
        ):
            raise ValueError("MAILROOM_OPERATOR_TOKEN must differ from MAILROOM_API_TOKEN")
        return self

    @field_validator("database")
    @classmethod
    def _database_name(cls, value: str) -> str:
        if not value or any(c in value for c in '/\\. "$'):
            raise ValueError("MAILROOM_DATABASE must be a plain MongoDB database name")
        return value
