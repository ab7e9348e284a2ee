"""A script sends a mail: it reaches the sender and the SMTP server once, however often the
mail is processed again (a redelivery after a crash, a duplicate delivery)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.processor.process import process_mail
from services.sender.service import build as sender_service
from shared.runtime import Runtime
from shared.service import Stack
from tests.e2e.conftest import DEFAULT_SCRIPTS, install_script, ok, sink_mails_to
from tests.integration.processor.helpers import store_raw
from tests.support import eventually, make_mail, server_settings


@pytest.fixture
def thanks_script(tmp_path: Path) -> Iterator[str]:
    """Install, like a third-party package, a script that thanks every sender once."""
    yield from install_script(
        tmp_path,
        "thanks",
        """
        async def run(mail, ctx):
            ctx.send_mail(
                "thanks",
                to=mail.from_[:1],
                subject="Thanks: " + mail.subject,
                text="We read every mail.",
            )
        """,
    )


async def test_a_script_mail_is_sent_once_when_processing_runs_again(
    rt: Runtime,
    api: httpx.AsyncClient,
    smtp_sink: Any,
    thanks_script: str,
    rabbit_url: str,
    mongo_url: str,
    mongo_db_name: str,
) -> None:
    scripts = [{"name": n, "enabled": True} for n in [thanks_script, *DEFAULT_SCRIPTS]]
    await ok(await api.patch("/settings/processor", json={"incoming_scripts": scripts}))
    await ok(
        await api.put(
            "/outgoing", json={"host": "127.0.0.1", "port": smtp_sink.port, "security": "none"}
        )
    )
    await rt.reload_config()
    customer = f"c-{uuid.uuid4().hex[:8]}@example.org"
    data, message_id = make_mail(subject="Invoice", sender=customer)
    msg = await store_raw(rt, data, "1:1")

    first = await process_mail(rt, msg)
    # a crash after publishing, before the mail was marked processed: it runs again
    await rt.store.raw_emails.set_status(raw_id=msg.raw_id, status="announced")
    await process_mail(rt, msg)
    assert (await process_mail(rt, msg)).duplicate_delivery  # and once more, as a duplicate

    sender = Stack(
        [sender_service],
        server_settings(
            rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, instance="thanks"
        ),
    )
    await sender.start()
    try:
        mail_id = f"script-{msg.raw_id}-thanks-thanks"

        async def both_deliveries_handled() -> bool:
            entry = await rt.store.outbox.get(mail_id=mail_id)
            return entry is not None and entry.attempts == 2 and entry.status == "sent"

        await eventually(both_deliveries_handled, what="both copies of the script's mail handled")
    finally:
        await sender.stop()
    # the subject carries the case reference of the outgoing subject template
    thanks = [m for m in sink_mails_to(smtp_sink, customer) if "Thanks: Invoice" in m["Subject"]]
    assert len(thanks) == 1, [m["Subject"] for m in sink_mails_to(smtp_sink, customer)]
    assert thanks[0]["In-Reply-To"] == message_id and thanks[0]["Auto-Submitted"]
    recorded = await rt.store.cases.messages(case_number=first.case_number or 0)
    assert [m.outbox_id for m in recorded if m.direction == "out" and "Thanks" in m.subject] == [
        mail_id
    ]
