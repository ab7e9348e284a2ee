"""Helpers of the end-to-end tests; the config stack and its API client are in tests/conftest."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import httpx

from shared.settings import SharedSettings
from tests.support import server_settings


def settings(rabbit_url: str, mongo_url: str, db: str, instance: str) -> SharedSettings:
    """Process settings of one stack of the end-to-end tests."""
    return server_settings(
        rabbit_url=rabbit_url,
        mongo_url=mongo_url,
        database=db,
        instance=instance,
    )


def sink_mails_to(sink: Any, address: str) -> list[EmailMessage]:
    """Mails the SMTP sink received for ``address``."""
    return [m for m in sink.messages() if address in str(m.get("X-Sink-Rcpt-To", ""))]


async def ok(response: httpx.Response) -> Any:
    """The JSON of a successful response (fails the test with the body otherwise)."""
    assert response.status_code < 300, response.text
    return response.json()
