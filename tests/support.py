"""Helpers shared by integration and end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from shared.service import Stack
from shared.settings import SharedSettings
from tests.secret_scan import SCAN

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


def make_mail(
    *,
    subject: str,
    sender: str = "Customer <customer@example.org>",
    to: str = "support@example.com",
    body: str = "Hello,\nplease help.\n",
    in_reply_to: str | None = None,
    references: str | None = None,
    message_id: str | None = None,
) -> tuple[bytes, str]:
    """A plain-text mail as bytes (CRLF) and its Message-ID."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    mid = message_id or make_msgid(domain="example.org")
    msg["Message-ID"] = mid
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg.set_content(body)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")), mid


SECRET_KEY = SCAN.secret("MAILROOM_SECRET_KEY", "test-secret-key-0123456789")
"""MAILROOM_SECRET_KEY of every test process (``server_settings`` sets it)."""
API_TOKEN = SCAN.secret("admin API token", "test-api-token-0123456789")
"""The admin token of the config API in tests (``server_settings`` sets it)."""
OPERATOR_TOKEN = SCAN.secret("operator API token", "test-operator-token-0123456789")
"""An operator token for tests that need the role (``server_settings(operator_token=…)``)."""


def server_settings(
    *, rabbit_url: str, mongo_url: str, database: str, instance: str, **overrides: Any
) -> SharedSettings:
    """Process settings pointing at the test servers, with a test secret key."""
    values: dict[str, Any] = {
        "broker_url": rabbit_url,
        "mongodb_url": mongo_url,
        "database": database,
        "instance_id": instance,
        "secret_key": SECRET_KEY,
        "api_token": API_TOKEN,
        "log_json": False,
        **overrides,
    }
    return SharedSettings(**values)


FASTSTREAM = Path(sys.executable).parent / "faststream"


def start_service(
    settings: SharedSettings, app: str, logs: Path, name: str
) -> subprocess.Popen[bytes]:
    """A service process (``faststream run app``, e.g. ``services.sender.app:app``) on the
    test servers of ``settings``, as instance ``name``, its output in ``logs/name.log``."""
    values: dict[str, object] = {
        "MAILROOM_BROKER_URL": settings.broker_url,
        "MAILROOM_MONGODB_URL": settings.mongodb_url,
        "MAILROOM_DATABASE": settings.database,
    }
    env = {
        **os.environ,
        **{
            k: v.get_secret_value() if isinstance(v, SecretStr) else str(v)
            for k, v in values.items()
        },
        "MAILROOM_SECRET_KEY": SECRET_KEY,
        "MAILROOM_INSTANCE_ID": name,
        "MAILROOM_LOG_JSON": "false",
        "MAILROOM_HTTP_PORT": "0",  # any free port: other test processes may hold the default
    }
    with (logs / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [str(FASTSTREAM), "run", app], env=env, stdout=log, stderr=subprocess.STDOUT
        )


async def _scan_request(request: httpx.Request) -> None:
    if isinstance(request.stream, httpx.ByteStream):  # streamed bodies are never JSON here
        SCAN.secrets_in_request(request.content)


async def _scan_response(response: httpx.Response) -> None:
    await response.aread()
    SCAN.record(
        f"the API response to {response.request.method} {response.request.url.path}", response.text
    )


def api_client(stack: Stack, token: str) -> httpx.AsyncClient:
    """An HTTP client of the stack's config API (in process), sending ``token``; the secret
    scan learns the secrets it sends and checks every response (``tests.secret_scan``)."""
    assert stack.asgi is not None, "the stack has no HTTP API (add the config service)"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack.asgi),
        base_url="http://config",
        headers={"Authorization": f"Bearer {token}"},
        event_hooks={"request": [_scan_request], "response": [_scan_response]},
    )


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_client(stack: Stack) -> httpx.AsyncClient:
    """A browser-like HTTP client of the stack's console (cookies kept, redirects not
    followed); every page it gets goes through the secret scan."""
    assert stack.asgi is not None, "the stack has no HTTP API (add the config service)"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack.asgi),
        base_url="http://config",
        event_hooks={"request": [_scan_request], "response": [_scan_response]},
    )


async def sign_in(client: httpx.AsyncClient, user: str, password: str) -> str:
    """Sign the console client in; the session's CSRF token (read off a page's form)."""
    answer = await client.post(
        "/console/signin", data={"username": user, "password": password, "next": "/console/health"}
    )
    assert answer.status_code == 303, answer.text
    page = await client.get("/console/health")
    assert page.status_code == 200, page.text
    found = CSRF_INPUT.search(page.text)
    assert found, "no CSRF token on the page"
    return found.group(1)
