"""Browser tests: Debian's headless Chromium, driven by Playwright, on the console served over
real HTTP.

One console and one browser for the whole session (a browser takes seconds to start, the
seeded stack more): the config service with the processor and the sender
(:data:`SERVICES`) on a database and RabbitMQ vhost of their own, seeded once with an
account, a case with its acknowledgement sent to the SMTP sink, and a failed mail
(``deploy.local.seed``). Each test gets a fresh browser context (its own cookies) and page.
Tests share the data: make your own users and give what you add a unique name.
``signed_in_as(page, role)`` gives the page the session of a session-wide user of that role
(cheap; for tests that only look and change shared settings), ``sign_in_as(page, role)`` signs
a new user in through the form (for tests of signing in and out). The other session servers
(``dovecot``, ``smtp_sink``, ``oauth_issuer``) come from tests/conftest.py; see
test_browser_email_accounts.py for a page driven against Dovecot.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect
from pymongo import AsyncMongoClient

from deploy.local.chromium import launch_chromium
from deploy.local.console import serve_console
from deploy.local.seed import ACCOUNT_PASSWORD, CREDENTIAL_SECRET, SmtpTarget, seed
from deploy.local.servers import SmtpSink, create_vhost, delete_vhost
from services.config.service import build as config_service
from services.processor.service import build as processor_service
from services.sender.service import build as sender_service
from shared.models.users import Role
from shared.service import ServiceBuilder, Stack
from tests.e2e.browser.console import Console, ConsoleUser
from tests.secret_scan import SCAN
from tests.support import API_TOKEN, server_settings

SERVICES: tuple[ServiceBuilder, ...] = (config_service, processor_service, sender_service)
"""What runs behind the browser tests' console (no fetcher: accounts added by a test are
not polled)."""
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
TIMEOUT_MS = 10_000
"""How long a page action or an ``expect`` waits before the test fails (Playwright's defaults
are 30 s and 5 s; the machines running the suite are often busy)."""
expect.set_options(timeout=TIMEOUT_MS)

SCAN.secret("password of the seeded account", ACCOUNT_PASSWORD)
SCAN.secret("client secret of the seeded credential", CREDENTIAL_SECRET)


@pytest.fixture(scope="session")
def browser_vhost_url() -> Iterator[str]:
    """A RabbitMQ vhost of the browser tests' own: the session's shared vhost is purged by
    every other test, and its dead letters must not reach this console's desk."""
    name = f"mailroom-browser-{uuid.uuid4().hex[:12]}"
    yield create_vhost(name)
    delete_vhost(name)


@pytest.fixture(scope="session")
async def console(
    browser_vhost_url: str, mongo_url: str, smtp_sink: SmtpSink
) -> AsyncIterator[Console]:
    """The seeded console, served over HTTP on a free port."""
    database = f"browser_{uuid.uuid4().hex[:12]}"
    settings = server_settings(
        rabbit_url=browser_vhost_url, mongo_url=mongo_url, database=database, instance="browser"
    )
    stack = Stack(SERVICES, settings)
    await stack.start()
    try:
        async with serve_console(stack) as url:
            headers = {"Authorization": f"Bearer {API_TOKEN}"}
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
                # The sink's certificate is its own CA; alice is one of its users.
                smtp = SmtpTarget(smtp_sink.port, "alice", "alicepw", smtp_sink.cert_file)
                seeded = await seed(stack.rt, api, smtp)
            yield Console(url=url, stack=stack, seeded=seeded)
    finally:
        await stack.stop()
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
        try:
            await client.drop_database(database)
        finally:
            await client.close()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (Debian's; installed first when missing and we are root)."""
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser, console: Console) -> AsyncIterator[Page]:
    """A page in a fresh context (no cookies) at 1280 px."""
    context = await browser.new_context(base_url=console.url, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    opened = await context.new_page()
    yield opened
    await context.close()


@pytest.fixture
def make_user(console: Console) -> Callable[[Role], Awaitable[ConsoleUser]]:
    """``await make_user("viewer")``: a new user of that role."""
    return console.make_user


@pytest.fixture
def signed_in_as(console: Console) -> Callable[[Page, Role], Awaitable[ConsoleUser]]:
    """``await signed_in_as(page, "viewer")``: ``page`` carries the session of the session-wide
    user of that role (signed in once; never sign it out)."""
    return console.signed_in_as


@pytest.fixture
def sign_in_as(console: Console) -> Callable[[Page, Role], Awaitable[ConsoleUser]]:
    """``await sign_in_as(page, "operator")``: a new user of that role, signed in on ``page``."""
    return console.sign_in_as
