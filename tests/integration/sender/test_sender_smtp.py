"""The SMTP adapter against the real aiosmtpd sink: every security mode with AUTH, certificate
checks, error translation, and one connection reused across messages."""

from __future__ import annotations

import asyncio
import logging

import pytest

from deploy.local.servers import SmtpSink
from services.sender import pool
from services.sender.compose import compose
from services.sender.pool import AiosmtplibTransport
from shared.errors import Permanent, Transient
from shared.models.config import OutgoingConnection, SystemConfig
from tests.integration.sender.helpers import (
    Relay,
    TcpServer,
    connection,
    outgoing_mail,
    received,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("security", "user"), [("none", "alice"), ("starttls", "bob"), ("tls", "alice")]
)
async def test_each_security_mode_authenticates_and_delivers(
    transport: AiosmtplibTransport, smtp_sink: SmtpSink, security: str, user: str
) -> None:
    port = smtp_sink.smtps_port if security == "tls" else smtp_sink.port
    conn = connection(smtp_sink, security=security, port=port, username=user, password=f"{user}pw")
    message = compose(outgoing_mail(subject=f"over {security}"), SystemConfig())

    reply = await transport.send(message, conn)

    assert reply.reply is not None and reply.reply.startswith("250 ") and reply.refused == {}
    (copy,) = received(smtp_sink, str(message["Message-ID"]))
    assert copy["Subject"] == f"over {security}"
    assert copy["X-Sink-Auth"] == user
    assert copy["X-Sink-Mail-From"] == "helpdesk@example.com"
    assert copy["X-Sink-Rcpt-To"] == "carol@example.org"


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_certificates_are_verified_by_default(
    transport: AiosmtplibTransport, smtp_sink: SmtpSink, security: str
) -> None:
    port = smtp_sink.smtps_port if security == "tls" else smtp_sink.port
    # Without ca_file only the system's CAs are trusted, and they never signed the sink's cert.
    conn = connection(smtp_sink, security=security, port=port, ca_file=None)
    message = compose(outgoing_mail(), SystemConfig())

    with pytest.raises(Permanent, match="not trusted") as caught:
        await transport.send(message, conn)

    assert f"127.0.0.1:{port}" in str(caught.value)
    assert received(smtp_sink, str(message["Message-ID"])) == []


async def test_verify_tls_false_is_an_explicit_logged_opt_out(
    transport: AiosmtplibTransport, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    conn = connection(smtp_sink, ca_file=None, verify_tls=False)
    message = compose(outgoing_mail(), SystemConfig())

    with caplog.at_level(logging.WARNING, logger="services.sender.smtp"):
        await transport.send(message, conn)

    assert any("verification is OFF" in r.getMessage() for r in caplog.records)
    assert len(received(smtp_sink, str(message["Message-ID"]))) == 1


async def test_wrong_password_is_permanent_and_names_user_and_host_not_the_password(
    transport: AiosmtplibTransport, smtp_sink: SmtpSink
) -> None:
    conn = connection(smtp_sink, password="Sup3r-Secret-Pw")

    with pytest.raises(Permanent) as caught:
        await transport.send(compose(outgoing_mail(), SystemConfig()), conn)

    text = str(caught.value)
    assert "'alice'" in text and f"127.0.0.1:{smtp_sink.port}" in text and "535" in text
    assert "Sup3r-Secret-Pw" not in text


async def test_one_connection_serves_many_mails_and_is_reopened_when_needed(
    transport: AiosmtplibTransport, smtp_sink: SmtpSink, relay: Relay
) -> None:
    conn = connection(smtp_sink, port=relay.port)

    async def send() -> str:
        message = compose(outgoing_mail(), SystemConfig())
        await transport.send(message, conn)
        return str(message["Message-ID"])

    for _ in range(3):
        await send()
    assert relay.connections == 1

    relay.cut()  # the server hangs up on an idle client
    await asyncio.sleep(0.2)
    assert len(received(smtp_sink, await send())) == 1
    assert relay.connections == 2

    conn = connection(smtp_sink, port=relay.port, username="bob", password="bobpw")
    (copy,) = received(smtp_sink, await send())
    assert copy["X-Sink-Auth"] == "bob"  # new settings, new connection
    assert relay.connections == 3


async def test_an_idle_connection_is_probed_before_reuse(
    transport: AiosmtplibTransport,
    smtp_sink: SmtpSink,
    relay: Relay,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool, "IDLE_PROBE_S", 0.0)  # every reuse counts as idle
    conn = connection(smtp_sink, port=relay.port)
    await transport.send(compose(outgoing_mail(), SystemConfig()), conn)
    await transport.send(compose(outgoing_mail(), SystemConfig()), conn)
    assert relay.connections == 1  # the NOOP succeeded

    relay.cut()  # no pause: the client has not noticed yet; only the NOOP can tell
    message = compose(outgoing_mail(), SystemConfig())
    await transport.send(message, conn)

    assert len(received(smtp_sink, str(message["Message-ID"]))) == 1
    assert relay.connections == 2


async def test_a_server_that_hangs_up_is_transient(
    transport: AiosmtplibTransport, hanging_up_server: TcpServer
) -> None:
    conn = connection_to(hanging_up_server)

    with pytest.raises(Transient, match="unreachable or disconnected"):
        await transport.send(compose(outgoing_mail(), SystemConfig()), conn)


async def test_a_silent_server_times_out_after_the_connect_timeout(
    transport: AiosmtplibTransport, silent_server: TcpServer
) -> None:
    conn = connection_to(silent_server, connect_timeout_ms=300)
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(Transient, match="timed out"):
        await transport.send(compose(outgoing_mail(), SystemConfig()), conn)

    assert loop.time() - started < 3


def connection_to(server: TcpServer, connect_timeout_ms: int = 5_000) -> OutgoingConnection:
    """Plain SMTP without AUTH to one of the misbehaving servers."""
    return OutgoingConnection(
        host="127.0.0.1",
        port=server.port,
        security="none",
        connect_timeout_ms=connect_timeout_ms,
    )
