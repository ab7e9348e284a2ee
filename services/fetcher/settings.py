"""The fetcher process's own settings: its instance id."""

from __future__ import annotations

import os
import secrets
import socket

from pydantic_settings import BaseSettings, SettingsConfigDict


class FetcherSettings(BaseSettings):
    """``MAILROOM_FETCHER_ID`` names this instance in ``mailroom fetchers``, the heartbeats and
    the leases. Unset, it is ``<hostname>-<pid>-<random>``: unique per process, so scaled
    containers and restarts never share one by accident. Two running processes must never
    be given the same id."""

    model_config = SettingsConfigDict(
        env_prefix="MAILROOM_FETCHER_", env_ignore_empty=True, extra="ignore"
    )

    id: str | None = None

    def instance_id(self) -> str:
        """The configured id, or a fresh unique one."""
        return self.id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
