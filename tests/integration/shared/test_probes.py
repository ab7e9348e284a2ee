"""Liveness, readiness and metrics of a service without an API, on the real servers."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.fetcher.service import build as fetcher_service
from shared.broker import build_broker, publish
from shared.models.messages import MailReceived
from shared.probes import check_readiness, probes_app
from shared.runtime import Runtime
from shared.service import Stack
from shared.store import Store
from shared.topology import MAIL_RECEIVED
from tests.support import eventually, server_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def fetcher_stack(
    rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> AsyncIterator[Stack]:
    """A fetcher alone (no consumer of ``processor.inbound``, so announcements wait there)."""
    settings = server_settings(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, instance="probes"
    )
    stack = Stack([fetcher_service], settings)
    await stack.start()
    yield stack
    await stack.stop()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")  # type: ignore[arg-type]


def sample(text: str, name: str, labels: str) -> float | None:
    """The value of one series in Prometheus text, or None when it is absent."""
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


async def test_a_running_service_is_live_and_ready(fetcher_stack: Stack) -> None:
    async with client(fetcher_stack.asgi) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "broker": "ok",
            "mongodb": "ok",
            "reason": None,
        }


async def test_not_ready_until_the_services_have_started(
    rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    """FastStream serves HTTP while it still starts the broker's subscribers and then the
    services (the topology with them): a client that waited for /readyz must not find the
    process half started (a setting written then, before the ``config`` exchange existed on a
    new RabbitMQ, answered 500)."""
    settings = server_settings(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, instance="starting"
    )
    stack = Stack([fetcher_service], settings)
    await stack.before_broker()
    await stack.rt.broker.start()
    try:
        async with client(stack.asgi) as http:
            starting = await http.get("/readyz")
            await stack.after_broker()
            started = await http.get("/readyz")
    finally:
        await stack.stop()
    assert starting.status_code == 503
    assert starting.json() == {
        "status": "not ready",
        "broker": "ok",
        "mongodb": "ok",
        "reason": "the services are still starting",
    }
    assert started.status_code == 200 and started.json()["status"] == "ready"


async def test_a_change_made_before_the_config_queue_existed_is_read_at_start(
    rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    """A setting written between the process's first read of the configuration and the start
    of its config subscriber was broadcast to no queue of this instance: the start reads the
    configuration again."""
    settings = server_settings(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, instance="gap"
    )
    stack = Stack([fetcher_service], settings)
    await stack.before_broker()
    first = stack.rt.config.settings.poll_interval_seconds
    await stack.rt.store.properties.put(
        module="settings", key="poll_interval_seconds", value=first + 7, who="test"
    )
    await stack.rt.broker.start()
    try:
        await stack.after_broker()
        assert stack.rt.config.settings.poll_interval_seconds == first + 7
    finally:
        await stack.stop()


async def test_metrics_show_the_depth_of_the_processor_queue(fetcher_stack: Stack) -> None:
    for n in range(3):
        mail = MailReceived(raw_id=f"raw-{n}", account="probe", source_key=f"1:{n}")
        await publish(fetcher_stack.rt.broker, mail, routing_key=MAIL_RECEIVED)

    async with client(fetcher_stack.asgi) as http:

        async def three_waiting() -> bool:
            response = await http.get("/metrics")
            assert response.headers["content-type"].startswith("text/plain")
            depth = sample(response.text, "mailroom_queue_messages", 'queue="processor.inbound"')
            return depth == 3

        await eventually(three_waiting, what="processor.inbound depth 3 in /metrics")
        text = (await http.get("/metrics")).text
    assert sample(text, "mailroom_queue_messages", 'queue="sender.outbound"') == 0
    assert "# TYPE mailroom_mails_fetched_total counter" in text


async def test_not_ready_while_mongodb_does_not_answer(rabbit_url: str) -> None:
    url = f"mongodb://mailroom:hunter22@127.0.0.1:{closed_port()}/"
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url, serverSelectionTimeoutMS=300)
    broker = build_broker(rabbit_url)
    await broker.connect()
    try:
        readiness = await check_readiness(store=Store(mongo, "probe"), broker=broker)
    finally:
        await broker.stop()
        await mongo.close()
    assert (readiness.status, readiness.mongodb, readiness.broker) == (
        "not ready",
        "unavailable",
        "ok",
    )
    assert readiness.reason is not None and "MongoDB unavailable" in readiness.reason
    assert "hunter22" not in readiness.reason


async def test_readyz_answers_503_with_the_reasons(mongo_url: str) -> None:
    settings = server_settings(
        rabbit_url=f"amqp://guest:guest@127.0.0.1:{closed_port()}/",
        mongo_url=mongo_url,
        database="unused",
        instance="probes-down",
    )
    # Neither connection was ever opened: the process is up, but cannot work.
    async with client(probes_app(Runtime(settings))) as http:
        assert (await http.get("/healthz")).status_code == 200
        response = await http.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["mongodb"], body["broker"]) == (
        "not ready",
        "unavailable",
        "unavailable",
    )
    assert "MongoDB" in body["reason"] and "RabbitMQ" in body["reason"]
