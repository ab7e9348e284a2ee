"""Fixtures of the end-to-end tests: the config service as its own stack, and its API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from services.config.service import build as config_service
from shared.service import Stack
from shared.settings import SharedSettings
from tests.support import api_client, server_settings

TOKEN = "e2e-api-token-0123456789"
SECRET_KEY = "e2e-secret-key-for-tests"


def settings(rabbit_url: str, mongo_url: str, db: str, instance: str) -> SharedSettings:
    """Process settings of one stack of the end-to-end tests."""
    return server_settings(
        rabbit_url=rabbit_url,
        mongo_url=mongo_url,
        database=db,
        instance=instance,
        secret_key=SECRET_KEY,
        api_token=TOKEN,
    )


@pytest.fixture
async def config_stack(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> AsyncIterator[Stack]:
    """The config service alone: its changes reach other stacks only by broadcast."""
    stack = Stack([config_service], settings(rabbit_url, mongo_url, mongo_db_name, "e2e-cfg"))
    await stack.start()
    yield stack
    await stack.stop()


@pytest.fixture
async def api(config_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An authorised HTTP client of the config service's API."""
    async with api_client(config_stack, TOKEN) as client:
        yield client


def sink_mails_to(sink: Any, address: str) -> list[EmailMessage]:
    """Mails the SMTP sink received for ``address``."""
    return [m for m in sink.messages() if address in str(m.get("X-Sink-Rcpt-To", ""))]


async def ok(response: httpx.Response) -> Any:
    """The JSON of a successful response (fails the test with the body otherwise)."""
    assert response.status_code < 300, response.text
    return response.json()
