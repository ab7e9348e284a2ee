"""End-to-end rules of the processor on real servers: a bounce for our acknowledgement joins
its case and is marked on it, an auto-reply is attached but never answered, and a poison mail
(a script that crashes on it) reaches the desk and is processed once the fault is removed."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.fetcher.service import build as fetcher_service
from services.processor.service import build as processor_service
from services.sender.service import build as sender_service
from shared.service import Stack
from tests.e2e.conftest import DEFAULT_SCRIPTS, install_script, ok, settings, sink_mails_to
from tests.support import eventually, make_mail

pytestmark = pytest.mark.e2e


@pytest.fixture
def poison_script(tmp_path: Path) -> Iterator[str]:
    """Install an incoming-mail script that crashes on mails whose subject says 'poison'.

    It is registered like any third-party script: a distribution with an entry point in the
    ``mailroom.incoming_scripts`` group, found on sys.path.
    """
    yield from install_script(
        tmp_path,
        "poison",
        """
        async def run(mail, ctx):
            if "poison" in mail.subject.lower():
                raise RuntimeError("script bug triggered by this mail")
        """,
    )


def dsn_for(original_id: str, recipient: str) -> bytes:
    """An RFC 3464 delivery status notification as Postfix writes it."""
    return (
        textwrap.dedent(f"""\
        From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
        To: support@example.com
        Subject: Undelivered Mail Returned to Sender
        Auto-Submitted: auto-replied
        Message-ID: <dsn-{abs(hash(original_id))}@mx.example.org>
        MIME-Version: 1.0
        Content-Type: multipart/report; report-type=delivery-status;
            boundary="BOUNDARY"

        --BOUNDARY
        Content-Type: text/plain; charset=us-ascii

        I'm sorry to have to inform you that your message could not be delivered.

        --BOUNDARY
        Content-Type: message/delivery-status

        Reporting-MTA: dns; mx.example.org
        Arrival-Date: Mon, 23 Nov 2026 10:00:00 +0000

        Final-Recipient: rfc822; {recipient}
        Original-Recipient: rfc822;{recipient}
        Action: failed
        Status: 5.1.1
        Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected

        --BOUNDARY
        Content-Type: text/rfc822-headers

        From: Support <support@example.com>
        To: {recipient}
        Subject: Printer [Case#10001]
        Message-ID: {original_id}

        --BOUNDARY--
        """)
        .replace("\n", "\r\n")
        .encode()
    )


async def test_bounce_auto_reply_and_poison_mail(
    rabbit_url: str,
    mongo_url: str,
    mongo_db_name: str,
    dovecot: Any,
    smtp_sink: Any,
    api: httpx.AsyncClient,
    config_stack: Any,
    poison_script: str,
) -> None:
    dovecot.reset_mailbox("alice")
    store = config_stack.rt.store
    workers = Stack(
        [fetcher_service, processor_service, sender_service],
        settings(rabbit_url, mongo_url, mongo_db_name, "e2e-rules"),
    )
    await workers.start()
    try:
        await ok(await api.patch("/settings/settings", json={"poll_interval_seconds": 0.3}))
        await ok(
            await api.put(
                "/outgoing", json={"host": "127.0.0.1", "port": smtp_sink.port, "security": "none"}
            )
        )
        await ok(
            await api.post(
                "/accounts",
                json={
                    "name": "support",
                    "protocol": "IMAP",
                    "security": "none",
                    "host": "127.0.0.1",
                    "port": dovecot.imap_port,
                    "username": "alice",
                    "password": "alicepw",
                    "after_fetch": "delete",
                },
            )
        )

        # -- a bounce for our acknowledgement joins the case and marks the mail -----------
        first, _ = make_mail(subject="Printer jammed", sender="frank@example.org")
        dovecot.deliver("alice", first)

        async def ack() -> Any:
            mails = sink_mails_to(smtp_sink, "frank@example.org")
            return mails[0] if mails else None

        acknowledgement = await eventually(ack, what="the acknowledgement to frank")
        case = (await store.cases.recent())[0]
        dovecot.deliver("alice", dsn_for(str(acknowledgement["Message-ID"]), "frank@example.org"))

        async def bounce_attached() -> bool:
            msgs = await store.cases.messages(case_number=case.number)
            return len([m for m in msgs if m.direction == "in"]) == 2

        await eventually(bounce_attached, what="the bounce on the case")

        async def marked() -> Any:
            # Marked on our mail a moment after the bounce is attached.
            return await store.db["messages"].find_one(
                {"direction": "out", "case_number": case.number, "bounce": {"$exists": True}}
            )

        out = await eventually(marked, what="the bounce marked on the acknowledgement")
        assert out["bounce"]["status"] == "5.1.1"
        assert len(await store.cases.recent()) == 1  # the bounce opened no case
        assert sink_mails_to(smtp_sink, "MAILER-DAEMON") == []

        # -- an auto-reply is attached but not answered ------------------------------------
        away, away_id = make_mail(subject="Out of office", sender="grace@example.org")
        dovecot.deliver("alice", b"Auto-Submitted: auto-replied\r\n" + away)

        async def away_processed() -> bool:
            doc = await store.db["raw_emails"].find_one({"message_id": away_id})
            return doc is not None and doc["status"] == "processed"

        await eventually(away_processed, what="the auto-reply processed")

        # -- a poison mail goes to the desk and is replayed after the fault is removed ----
        scripts = [
            {"name": n, "enabled": True}
            for n in [*DEFAULT_SCRIPTS[:-1], poison_script, DEFAULT_SCRIPTS[-1]]
        ]
        version = (
            await ok(await api.patch("/settings/processor", json={"incoming_scripts": scripts}))
        )["version"]
        await eventually(lambda: _version_at_least(workers, version), what="workers reloaded")
        poison, poison_id = make_mail(subject="Poison pill", sender="henry@example.org")
        dovecot.deliver("alice", poison)

        async def on_desk() -> list[Any]:
            return list((await api.get("/failed")).json())

        entry = (await eventually(on_desk, what="the poison mail on the desk"))[0]
        assert "RuntimeError" in entry["error"] and "henry@example.org" in entry["sender"]
        parsed = await ok(await api.get(f"/failed/{entry['id']}/parsed"))
        assert parsed["subject"] == "Poison pill"
        raw = await api.get(f"/failed/{entry['id']}/raw")
        assert poison_id.encode() in raw.content

        healthy = [s for s in scripts if s["name"] != poison_script]
        version = (
            await ok(await api.patch("/settings/processor", json={"incoming_scripts": healthy}))
        )["version"]
        await eventually(lambda: _version_at_least(workers, version), what="workers reloaded")
        assert (await ok(await api.post(f"/failed/{entry['id']}/replay")))["replayed"]

        async def poison_processed() -> bool:
            doc = await store.db["raw_emails"].find_one({"message_id": poison_id})
            return doc is not None and doc["status"] == "processed"

        await eventually(poison_processed, what="the replayed mail processed")
        audit = await ok(await api.get(f"/failed/{entry['id']}/audit"))
        assert [a["outcome"] for a in audit] == ["replayed"]
        # the sender has caught up with henry's acknowledgement; grace never got one
        await eventually(lambda: _has_mail(smtp_sink, "henry@example.org"), what="henry's ack")
        assert sink_mails_to(smtp_sink, "grace@example.org") == []
    finally:
        await workers.stop()


async def _version_at_least(stack: Stack, version: int) -> bool:
    return stack.rt.config.version >= version


async def _has_mail(sink: Any, address: str) -> bool:
    return bool(sink_mails_to(sink, address))
