"""Session fixtures that start real servers with ``deploy.local.servers``.

Servers start on first use and stop at the end of the session, whatever the tests did.
A fixture whose server cannot start fails the tests that need it; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import aio_pika.exceptions
import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from deploy.local.servers import (
    Dovecot,
    OAuthIssuer,
    SmtpSink,
    create_vhost,
    delete_vhost,
    make_cert,
    start_dovecot,
    start_mongodb,
    start_oauth_issuer,
    start_smtp_sink,
)
from services.config.service import build as config_service
from shared.service import Stack
from shared.store._base import Doc
from shared.topology import DEAD_LETTER_QUEUES, RETRY_TIERS, WORK_QUEUES, retry_queue
from tests.secret_scan import SCAN, LogRecorder
from tests.support import API_TOKEN, api_client, server_settings

USERS = {
    "alice": SCAN.secret("password of the test user alice", "alicepw"),
    "bob": SCAN.secret("password of the test user bob", "bobpw"),
}


def pytest_configure(config: pytest.Config) -> None:
    """Install the session's secret scan: logs, API responses, CLI output (see
    ``tests.secret_scan``)."""
    config.pluginmanager.register(SCAN, "secret-scan")
    logging.getLogger().addHandler(LogRecorder(SCAN))


HANG_REPORT_AFTER = 240.0
"""Seconds after which a test still running prints every asyncio task's stack: before the
300 s of pytest-timeout, whose dump shows threads only, while a hung await sits in a task."""


@pytest.fixture(autouse=True)
async def task_stacks_on_hang() -> AsyncIterator[None]:
    """Print the stack of every task on the session's event loop when a test hangs."""

    def report() -> None:
        print(f"--- still running after {HANG_REPORT_AFTER:g} s; asyncio tasks:", file=sys.stderr)
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stderr)

    handle = asyncio.get_running_loop().call_later(HANG_REPORT_AFTER, report)
    try:
        yield
    finally:
        handle.cancel()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``long`` modules first (in collection order otherwise): the workers of
    ``make test`` take modules in this order, and one started last would run alone at the
    end while the other workers idle."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(scope="session")
def state_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """One directory for every server of the session; kept when a test failed (logs)."""
    # Not tmp_path_factory: its base is private to root, and Dovecot's mail uid must be
    # able to reach the mail directories.
    path = Path(tempfile.mkdtemp(prefix="mailroom-test-"))
    path.chmod(0o755)
    yield path
    if request.session.testsfailed:
        print(f"\nserver state and logs kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def rabbit_vhost_url() -> Iterator[str]:
    """AMQP URL of a vhost of its own for this session, deleted afterwards."""
    name = f"mailroom-test-{uuid.uuid4().hex[:12]}"
    url = create_vhost(name)
    yield url
    delete_vhost(name)


@pytest.fixture
async def rabbit_url(rabbit_vhost_url: str) -> str:
    """The session's vhost with Mailroom's queues emptied, so no test sees another's mail.

    Each test has its own database; a message left in a queue by an earlier test would
    name a raw mail this test's database does not hold.
    """
    names = [q.name for q in (*WORK_QUEUES.values(), *DEAD_LETTER_QUEUES.values())]
    names += [retry_queue(key, delay).name for key in WORK_QUEUES for delay in RETRY_TIERS]
    connection = await aio_pika.connect(rabbit_vhost_url)
    async with connection:
        for name in names:
            # A passive declare of a missing queue closes its channel: one channel each.
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                await queue.purge()
            except aio_pika.exceptions.ChannelClosed:
                continue
            await channel.close()
    return rabbit_vhost_url


@pytest.fixture(scope="session")
def mongo_url(state_dir: Path) -> Iterator[str]:
    """URL of a MongoDB server for this session."""
    server = start_mongodb(state_dir)
    yield server.url
    server.stop()


@pytest.fixture
async def mongo_db_name(mongo_url: str) -> AsyncIterator[str]:
    """A database name unique to one test; the database is dropped after it."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@pytest.fixture
async def mongo_db(mongo_url: str, mongo_db_name: str) -> AsyncIterator[AsyncDatabase[Doc]]:
    """The database of :func:`mongo_db_name` on a client of this test's own."""
    client: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_url)
    try:
        yield client[mongo_db_name]
    finally:
        await client.close()


@pytest.fixture(scope="session")
def oauth_issuer(state_dir: Path) -> Iterator[OAuthIssuer]:
    """The local OAuth 2.0 issuer (https discovery + token endpoint for msal, http token
    introspection for Dovecot); register apps with ``add_client(id, secret, user)`` and
    point msal at ``authority()`` with ``ca_file``."""
    issuer = start_oauth_issuer(state_dir)
    yield issuer
    issuer.stop()


@pytest.fixture(scope="session")
def dovecot(state_dir: Path, oauth_issuer: OAuthIssuer) -> Iterator[Dovecot]:
    """A private Dovecot with users alice/alicepw and bob/bobpw; it also accepts XOAUTH2 and
    OAUTHBEARER with tokens of ``oauth_issuer``."""
    server = start_dovecot(
        state_dir, USERS, oauth2_introspection_url=oauth_issuer.introspection_url
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_sink(state_dir: Path) -> Iterator[SmtpSink]:
    """The SMTP sink (SMTP with STARTTLS, SMTPS; AUTH as alice or bob), same cert as Dovecot."""
    cert_file, key_file = make_cert(state_dir / "tls")
    sink = start_smtp_sink(state_dir, USERS, cert_file, key_file)
    yield sink
    sink.stop()


@pytest.fixture
async def config_stack(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> AsyncIterator[Stack]:
    """The config service alone on this test's database: its changes reach other stacks
    only by broadcast, as across containers."""
    stack = Stack(
        [config_service],
        server_settings(
            rabbit_url=rabbit_url,
            mongo_url=mongo_url,
            database=mongo_db_name,
            instance="test-config",
        ),
    )
    await stack.start()
    yield stack
    await stack.stop()


@pytest.fixture
async def api(config_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An admin HTTP client of the config service's API."""
    async with api_client(config_stack, API_TOKEN) as client:
        yield client
