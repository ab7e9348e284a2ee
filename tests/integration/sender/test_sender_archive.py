"""Interception by system flavour on real servers: the mail lands in the test archive, never
at the SMTP sink, and operators find it through the API and the ``mailroom`` CLI."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from deploy.local.servers import SmtpSink
from services.config.service import build as config_service
from services.sender.deliver import deliver
from services.sender.deps import SenderDeps
from services.sender.pool import AiosmtplibTransport
from shared.config_views import OUTGOING_KEY, OUTGOING_MODULE, seal_secrets
from shared.runtime import Runtime
from shared.service import Stack
from tests.integration.sender.helpers import connection, outgoing_mail, received
from tests.support import api_client
from tests.support_cli import mailroom, settings_cli_env

pytestmark = pytest.mark.integration

TOKEN = "archive-test-token-0123456789"


async def test_system_flavour(rt: Runtime) -> None:
    # The defaults: production sends; "test" and "development" are test-archive flavours.
    assert not rt.config.system.intercepts
    await rt.store.properties.put(module="system", key="flavour", value="Test", who="t")
    assert (await rt.reload_config()).system.intercepts


async def intercepting(rt: Runtime, sink: SmtpSink | None) -> None:
    if sink is not None:
        conn = connection(sink)
        value = seal_secrets(conn.model_dump(mode="json") | {"password": conn.password}, rt.box)
        await rt.store.properties.put(
            module=OUTGOING_MODULE, key=OUTGOING_KEY, value=value, who="t"
        )
    await rt.store.properties.put(module="system", key="flavour", value="staging", who="t")
    await rt.store.properties.put(
        module="system", key="test_archive_flavours", value=["staging"], who="t"
    )
    await rt.reload_config()


async def test_mail_is_kept_in_the_archive_instead_of_sent(
    rt: Runtime, smtp_sink: SmtpSink, transport: AiosmtplibTransport
) -> None:
    await intercepting(rt, smtp_sink)
    mail = outgoing_mail(subject="Not for real customers")

    entry = await deliver(SenderDeps.of(rt), mail, transport)
    again = await deliver(SenderDeps.of(rt), mail, transport)  # a redelivery archives nothing new

    assert entry.status == again.status == "intercepted"
    assert [(r.state, r.attempts) for r in again.recipients] == [("intercepted", 1)]
    assert received(smtp_sink, entry.message_id) == []
    (kept,) = await rt.store.test_archive.recent()
    assert (kept.id, kept.subject, kept.flavour) == (mail.mail_id, mail.subject, "staging")
    assert f"Message-ID: {entry.message_id}" in kept.raw


async def test_interception_needs_no_smtp_connection_and_shows_in_api_and_cli(
    rt: Runtime, transport: AiosmtplibTransport
) -> None:
    await intercepting(rt, None)
    mail = outgoing_mail(subject="Archived only")
    await deliver(SenderDeps.of(rt), mail, transport)

    stack = Stack(
        [config_service],
        rt.settings.model_copy(
            update={"instance_id": "archive-api", "api_token": SecretStr(TOKEN)}
        ),
    )
    await stack.start()
    try:
        async with api_client(stack, TOKEN) as client:
            listed = (await client.get("/archive", params={"to": "carol@example.org"})).json()
            shown = (await client.get(f"/archive/{mail.mail_id}")).json()
            missing = await client.get("/archive/nope")
    finally:
        await stack.stop()
    assert [m["id"] for m in listed] == [mail.mail_id]
    assert shown["subject"] == "Archived only" and shown["from"]["address"]
    assert "Subject: Archived only" in shown["raw"]
    assert missing.status_code == 404

    env = settings_cli_env(rt.settings)
    cli_list = mailroom("archive", "list", "--json", env=env)
    assert cli_list.returncode == 0, cli_list.stderr
    assert [m["id"] for m in json.loads(cli_list.stdout)] == [mail.mail_id]
    cli_raw = mailroom("archive", "show", mail.mail_id, "--raw", env=env)
    assert cli_raw.returncode == 0, cli_raw.stderr
    assert "Subject: Archived only" in cli_raw.stdout
