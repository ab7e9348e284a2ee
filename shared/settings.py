"""Process settings from the environment. Everything else is a system property in MongoDB."""

from __future__ import annotations

import os
import socket

from pydantic import Field, SecretStr, field_validator
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
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8025, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("secret_key", "api_token")
    @classmethod
    def _not_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() in {"changethis", "changeme"}:
            raise ValueError("replace the placeholder value with a real secret")
        return value

    @field_validator("database")
    @classmethod
    def _database_name(cls, value: str) -> str:
        if not value or any(c in value for c in '/\\. "$'):
            raise ValueError("MAILROOM_DATABASE must be a plain MongoDB database name")
        return value
