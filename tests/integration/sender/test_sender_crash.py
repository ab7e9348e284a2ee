"""Crash test: a real sender process (``faststream run services.sender.app:app``) is killed
with SIGKILL while a burst of mails is in flight (outbox claims and outcomes group-committed
in batches, several SMTP connections busy), then a new one finishes the job.

Afterwards no mail reached the SMTP server twice, and none is lost: every mail is either
sent (and the server got it exactly once) or handed to an operator as "possibly sent"
(recipients ``unknown``, on the desk), never sent again on a guess. Those are the mails the
kill cut off mid-transaction (one per SMTP connection) and the mails whose transaction had
ended but whose outcome was not yet written (a connection takes its next mail meanwhile):
usually four here, five in about one run in five, and never more than the mails the sender
holds at once (its prefetch). The kill follows an observation from outside
(the server has taken a share of the mails), not a hook inside the sender.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.sender.deps import SenderSettings
from shared.broker import publish
from shared.config_views import OUTGOING_KEY, OUTGOING_MODULE
from shared.runtime import Runtime
from shared.topology import MAIL_OUTGOING
from tests.integration.sender.helpers import outgoing_mail
from tests.support import eventually, start_service

pytestmark = [pytest.mark.integration, pytest.mark.long]

MAILS = 300
CONNECTIONS = 4
SENDER_APP = "services.sender.app:app"


class Recording:
    """aiosmtpd handler: counts each Message-ID it accepts, a little slowly so that the kill
    finds transactions on every connection."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.005)
        content = envelope.original_content or b""
        self.received[str(message_from_bytes(content)["Message-ID"])] += 1
        return "250 OK"


@pytest.mark.timeout(240)
async def test_killed_sender_loses_nothing_and_sends_nothing_twice(
    rt: Runtime, tmp_path: Path
) -> None:
    handler = Recording()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.localhost"), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    # Short timeouts: a claim without outcome is checked (not retried) after twice their sum.
    smtp = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "concurrency": CONNECTIONS,
        "connect_timeout_ms": 1000,
        "send_timeout_ms": 1000,
    }
    await rt.store.properties.put(module=OUTGOING_MODULE, key=OUTGOING_KEY, value=smtp, who="t")
    mails = [outgoing_mail(subject=f"crash {n}") for n in range(MAILS)]
    for mail in mails:
        await publish(rt.broker, mail, routing_key=MAIL_OUTGOING)

    first = start_service(rt.settings, SENDER_APP, tmp_path, "sender-1")
    second = None
    try:

        async def a_share_sent() -> bool:
            return sum(handler.received.values()) >= MAILS // 4

        await eventually(a_share_sent, timeout=120, what="the first mails at the server")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        taken_at_kill = sum(handler.received.values())
        assert taken_at_kill < MAILS, "killed too late: every mail was sent already"

        second = start_service(rt.settings, SENDER_APP, tmp_path, "sender-2")
        outbox = rt.store.db["outbox"]

        async def all_final() -> bool:
            final = {"status": {"$in": ["sent", "failed"]}}
            return await outbox.count_documents(final) == MAILS

        await eventually(all_final, timeout=180, what="every mail sent or handed to the desk")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(20)
        server.close()

    entries = {e.id: e for e in [await rt.store.outbox.get(mail_id=m.mail_id) for m in mails] if e}
    assert len(entries) == MAILS
    twice = {mid: n for mid, n in handler.received.items() if n > 1}
    assert not twice, f"sent more than once: {twice}"
    possibly_sent = [e for e in entries.values() if e.status == "failed"]
    for entry in possibly_sent:
        assert [r.state for r in entry.recipients] == ["unknown"], entry
    assert len(possibly_sent) <= SenderSettings().prefetch
    for entry in entries.values():
        if entry.status == "sent":
            assert handler.received[entry.message_id] == 1, entry.id
    print(
        f"killed after {taken_at_kill} of {MAILS} mails; "
        f"possibly sent: {len(possibly_sent)}; sent once: {len(handler.received)}"
    )
