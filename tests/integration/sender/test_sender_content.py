"""Building mail on real servers: the acknowledgement from its template, one conversation id
per case, a From outside the allowed list refused, and the fetch-error notification from an
``account.failing`` event — each delivered to (or kept from) the SMTP sink."""

from __future__ import annotations

from typing import Any

import pytest

from deploy.local.servers import SmtpSink
from services.sender.deliver import deliver
from services.sender.deps import SenderDeps
from services.sender.pool import AiosmtplibTransport
from services.sender.service import build as sender_service
from shared.config_views import OUTGOING_KEY, OUTGOING_MODULE, seal_secrets
from shared.conversation import find_conversation_id
from shared.errors import Permanent
from shared.models.messages import AccountFailing
from shared.runtime import Runtime
from shared.service import Stack
from shared.topology import ACCOUNT_FAILING, MAIL_EXCHANGE
from tests.integration.sender.helpers import connection, outgoing_mail, received
from tests.support import eventually

pytestmark = pytest.mark.integration


async def configure(rt: Runtime, sink: SmtpSink, **modules: dict[str, Any]) -> None:
    conn = connection(sink)
    value = seal_secrets(conn.model_dump(mode="json") | {"password": conn.password}, rt.box)
    await rt.store.properties.put(module=OUTGOING_MODULE, key=OUTGOING_KEY, value=value, who="t")
    for module, fields in modules.items():
        for key, setting in fields.items():
            await rt.store.properties.put(module=module, key=key, value=setting, who="t")
    await rt.reload_config()


async def test_acknowledgement_comes_from_the_template_with_a_conversation_id(
    rt: Runtime, smtp_sink: SmtpSink, transport: AiosmtplibTransport
) -> None:
    await configure(
        rt,
        smtp_sink,
        conversation={"enabled": True, "system_identifier": "ACME"},
        templates={"acknowledgement_body": "Hello {{ name }}: case {{ case }}."},
    )
    case, _ = await rt.store.cases.create_for_raw(raw_id="raw-c", subject="Printer", contact=None)
    ack = outgoing_mail(kind="acknowledgement", automatic=True, case_number=case.number)
    reply = outgoing_mail(case_number=case.number, subject="Re: Printer")

    first = await deliver(SenderDeps.of(rt), ack, transport)
    second = await deliver(SenderDeps.of(rt), reply, transport)

    (ack_copy,) = received(smtp_sink, first.message_id)
    (reply_copy,) = received(smtp_sink, second.message_id)
    assert ack_copy.get_content().replace("\r\n", "\n") == f"Hello Carol: case {case.number}.\n"
    settings = rt.config.conversation
    reference = find_conversation_id(settings, str(ack_copy["Subject"]))
    assert reference is not None
    assert find_conversation_id(settings, str(reply_copy["Subject"])) == reference
    assert await rt.store.cases.case_of_conversation(conversation_id=reference) == case.number


async def test_a_from_outside_the_allowed_list_is_refused_and_recorded(
    rt: Runtime, smtp_sink: SmtpSink, transport: AiosmtplibTransport
) -> None:
    await configure(
        rt,
        smtp_sink,
        addresses={
            "from_address": {"name": "Support", "address": "support@example.com"},
            "allowed_from": ["support@example.com"],
        },
    )
    mail = outgoing_mail(from_address={"address": "ceo@example.com"})

    with pytest.raises(Permanent, match=r"ceo@example\.com is not allowed"):
        await deliver(SenderDeps.of(rt), mail, transport)

    entry = await rt.store.outbox.get(mail_id=mail.mail_id)
    assert entry is not None and entry.status == "failed"
    assert entry.error and "addresses/allowed_from" in entry.error
    assert received(smtp_sink, entry.message_id) == []


async def test_a_failing_account_notifies_the_administrators(
    rt: Runtime, smtp_sink: SmtpSink
) -> None:
    admin = {"name": "Admin", "address": "admin@example.org"}
    await configure(rt, smtp_sink, addresses={"notification_recipients": [admin]})
    event = AccountFailing(account="support", error="login refused", failures=5)
    stack = Stack([sender_service], rt.settings.model_copy(update={"instance_id": "notify"}))
    await stack.start()
    try:
        await rt.broker.publish(
            event, exchange=MAIL_EXCHANGE, routing_key=ACCOUNT_FAILING, persist=True
        )
        entry = await eventually(
            lambda: rt.store.outbox.get(mail_id=f"fetch-error-{event.correlation_id}"),
            what="the notification in the outbox",
        )
        (copy,) = await eventually(
            lambda: _received_list(smtp_sink, entry.message_id), what="the notification sent"
        )
    finally:
        await stack.stop()
    assert copy["Subject"] == "Mailroom: fetching mail from account support fails"
    assert copy["X-Sink-Rcpt-To"] == "admin@example.org"
    assert copy["Auto-Submitted"] == "auto-generated"
    assert "login refused" in copy.get_content()


async def _received_list(sink: SmtpSink, message_id: str) -> list[Any]:
    return received(sink, message_id)


async def test_outgoing_scripts_sign_drop_and_stop_mail(
    rt: Runtime, smtp_sink: SmtpSink, transport: AiosmtplibTransport
) -> None:
    await configure(rt, smtp_sink, sender={"signature": "Your support team"})
    noreply = {"address": "no-reply@example.net"}

    signed = await deliver(
        SenderDeps.of(rt), outgoing_mail(to=[{"address": "carol@example.org"}, noreply]), transport
    )
    stopped = await deliver(SenderDeps.of(rt), outgoing_mail(to=[noreply]), transport)

    (copy,) = received(smtp_sink, signed.message_id)
    assert copy["X-Sink-Rcpt-To"] == "carol@example.org"
    assert copy.get_content().replace("\r\n", "\n").endswith("\n-- \nYour support team\n")
    assert [(r.address, r.state) for r in signed.recipients] == [
        ("carol@example.org", "sent"),
        ("no-reply@example.net", "stopped"),
    ]
    assert stopped.status == "stopped" and stopped.error
    assert "stopped by outgoing-mail script 'suppress_recipients'" in stopped.error
    assert received(smtp_sink, stopped.message_id) == []
