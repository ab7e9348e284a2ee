"""The outgoing connection test from the API and the CLI against the real SMTP sink:
steps, a test mail, the technical error without the password, and interception."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from deploy.local.servers import SmtpSink
from services.config.service import build as config_service
from shared.runtime import Runtime
from shared.service import Stack
from tests.support_cli import mailroom, settings_cli_env

pytestmark = pytest.mark.integration

TOKEN = "probe-test-token-0123456789"
PASSWORD = "Wr0ng-Pa55word"


@pytest.fixture
async def client(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    settings = rt.settings.model_copy(
        update={"instance_id": "probe-api", "api_token": SecretStr(TOKEN)}
    )
    stack = Stack([config_service], settings)
    await stack.start()
    assert stack.asgi is not None
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=stack.asgi),
            base_url="http://config",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as c:
            yield c
    finally:
        await stack.stop()


async def set_outgoing(client: httpx.AsyncClient, sink: SmtpSink, password: str) -> None:
    body = {
        "host": "127.0.0.1",
        "port": sink.smtps_port,
        "security": "tls",
        "username": "alice",
        "password": password,
        "ca_file": str(sink.cert_file),
    }
    response = await client.put("/outgoing", json=body)
    assert response.status_code == 200, response.text


async def test_the_test_connects_authenticates_and_sends_a_test_mail(
    client: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    await set_outgoing(client, smtp_sink, "alicepw")

    report = (await client.post("/outgoing/test", json={"send_to": "ops@example.org"})).json()

    assert report["ok"] is True and report["error"] is None and not report["intercepted"]
    assert report["steps"] == [
        f"connected to 127.0.0.1:{smtp_sink.smtps_port}",
        "TLS established, certificate verified",
        "authenticated as alice",
    ]
    assert report["test_mail"].startswith("sent to ops@example.org: 250")
    test_mails = [m for m in smtp_sink.messages() if m["X-Sink-Rcpt-To"] == "ops@example.org"]
    assert test_mails and test_mails[-1]["Subject"] == "Mailroom test mail"


async def test_a_refused_login_is_reported_without_the_password_also_from_the_cli(
    rt: Runtime, client: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    await set_outgoing(client, smtp_sink, PASSWORD)

    report = (await client.post("/outgoing/test", json={})).json()

    assert report["ok"] is False and report["steps"] == []
    assert "refused the login of user 'alice'" in report["error"] and "535" in report["error"]
    assert PASSWORD not in json.dumps(report)

    env = settings_cli_env(rt.settings)
    cli = mailroom("outgoing", "test", env=env)
    assert cli.returncode == 1
    assert "refused the login of user 'alice'" in cli.stdout
    assert PASSWORD not in cli.stdout + cli.stderr


async def test_when_mail_is_intercepted_the_test_says_so_and_sends_nothing(
    rt: Runtime, client: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    await set_outgoing(client, smtp_sink, "alicepw")
    response = await client.patch("/settings/system", json={"flavour": "test"})
    assert response.status_code == 200, response.text
    before = len(smtp_sink.messages())

    report = (await client.post("/outgoing/test", json={"send_to": "ops@example.org"})).json()

    assert report["ok"] is True and report["intercepted"] is True
    assert report["test_mail"].startswith("not sent: system flavour 'test'")
    assert len(smtp_sink.messages()) == before


async def test_credentials_from_must_name_an_existing_account(
    client: httpx.AsyncClient, smtp_sink: SmtpSink
) -> None:
    await set_outgoing(client, smtp_sink, "alicepw")

    response = await client.put("/outgoing", json={"credentials_from": "nosuch"})

    assert response.status_code == 422
    assert "incoming account 'nosuch', which does not exist" in response.json()["detail"]
    kept = (await client.get("/outgoing")).json()
    assert (kept["username"], kept["password_set"], kept["credentials_from"]) == (
        "alice",
        True,
        None,
    )
