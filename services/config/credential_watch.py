"""The config service's watch over OAuth 2.0 credentials: every minute it assesses each one
(``shared.credential_health``), keeps the gauges of seconds to expiry current and sends the
day's alerts. Several config instances may run it: the alerts' once-a-day key makes the first
one send and the others skip."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from shared.credential_health import check_credentials
from shared.errors import MailroomError
from shared.runtime import Runtime

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 60.0
"""A minute: expiries are days away, refusals are alerted at once where they happen."""


class CredentialWatch:
    """Runs :func:`check_credentials` every ``interval`` seconds between start and stop."""

    def __init__(self, rt: Runtime, *, interval: float = CHECK_INTERVAL_S) -> None:
        self._rt = rt
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start watching (the first check runs at once)."""
        self._task = asyncio.create_task(self._loop(), name="credential-watch")

    async def stop(self) -> None:
        """Stop watching."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await check_credentials(self._rt)
            except MailroomError as exc:  # MongoDB or RabbitMQ away: try again next minute
                log.warning("credentials not checked: %s", exc)
            await asyncio.sleep(self._interval)
