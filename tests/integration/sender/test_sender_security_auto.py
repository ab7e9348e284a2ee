"""SMTP security ``auto`` (CSM's "Auto") on real servers: STARTTLS when the server offers it,
and never a password in clear when it does not."""

from __future__ import annotations

import pytest

from deploy.local.servers import SmtpSink
from services.sender.compose import compose
from services.sender.pool import AiosmtplibTransport
from services.sender.probe import probe
from shared.errors import Permanent
from shared.models.config import OutgoingConnection, SystemConfig
from tests.integration.sender.helpers import connection, outgoing_mail, received, serving
from tests.integration.sender.scripted import ScriptedHandler, ScriptedServer

pytestmark = pytest.mark.integration


async def test_auto_upgrades_when_starttls_is_offered_then_authenticates(
    transport: AiosmtplibTransport, smtp_sink: SmtpSink
) -> None:
    conn = connection(smtp_sink, security="auto")
    message = compose(outgoing_mail(subject="over auto"), SystemConfig())

    reply = await transport.send(message, conn)

    assert reply.reply is not None and reply.reply.startswith("250 ")
    (copy,) = received(smtp_sink, str(message["Message-ID"]))
    assert copy["X-Sink-Auth"] == "alice"
    report = await probe(conn, SystemConfig())
    assert report.ok and "TLS established, certificate verified" in report.steps


async def test_auto_verifies_the_certificate_of_the_upgrade(
    transport: AiosmtplibTransport, smtp_sink: SmtpSink
) -> None:
    conn = connection(smtp_sink, security="auto", ca_file=None)

    with pytest.raises(Permanent, match="not trusted"):
        await transport.send(compose(outgoing_mail(), SystemConfig()), conn)


async def test_auto_sends_no_password_to_a_server_without_starttls(
    transport: AiosmtplibTransport,
) -> None:
    handler = ScriptedHandler()
    async with serving(ScriptedServer(handler)) as server:
        conn = OutgoingConnection(
            host="127.0.0.1", port=server.port, security="auto", username="alice",
            password="Pl41n-Secret",
        )  # fmt: skip
        with pytest.raises(Permanent, match="does not offer STARTTLS") as caught:
            await transport.send(compose(outgoing_mail(), SystemConfig()), conn)
        assert "Pl41n-Secret" not in str(caught.value)
        assert handler.received == []

        # Without credentials there is nothing to protect: the mail goes, in clear.
        anonymous = conn.model_copy(update={"username": None, "password": None})
        reply = await transport.send(compose(outgoing_mail(), SystemConfig()), anonymous)
        assert reply.reply == "250 OK stored"
        report = await probe(anonymous, SystemConfig())
        assert "no TLS: the server offers no STARTTLS (security auto)" in report.steps


def test_auto_uses_the_submission_port_and_the_seeds_words_map_to_modes() -> None:
    assert OutgoingConnection(host="smtp.example.org", security="auto").effective_port == 587
    doc = OutgoingConnection.model_fields["security"].description or ""
    for seed_word in ('"SSL"', '"TLS"', '"Auto"'):
        assert seed_word in doc
