"""The whole pipeline on real servers: Dovecot → fetcher → RabbitMQ → processor → MongoDB →
sender → SMTP sink, configured through the config service's HTTP API.

The config service and the workers run as two separate stacks (own Runtime, own broker
connection, own config queue), so every setting change reaches the workers only through the
``config`` broadcast, as it would across containers.
"""

from __future__ import annotations

import asyncio
import imaplib
import json
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.fetcher.service import build as fetcher_service
from services.processor.service import build as processor_service
from services.sender.service import build as sender_service
from shared.models.config import find_case_reference
from shared.service import Stack
from tests.e2e.conftest import ok, settings, sink_mails_to
from tests.support import SECRET_KEY, eventually, make_mail
from tests.support_cli import cli_env, mailroom

pytestmark = pytest.mark.e2e

WORKERS = [fetcher_service, processor_service, sender_service]
ALICE_PW = "alicepw"
BOB_PW = "bobpw"


def imap_state(dovecot: Any, user: str, password: str) -> list[tuple[int, bytes]]:
    """(UID, FLAGS) of every message in the user's INBOX."""
    ctx = ssl.create_default_context(cafile=str(dovecot.cert_file))
    with imaplib.IMAP4_SSL("127.0.0.1", dovecot.imaps_port, ssl_context=ctx) as imap:
        imap.login(user, password)
        imap.select("INBOX")
        _, data = imap.uid("FETCH", "1:*", "(FLAGS)")
        return [
            (int(str(d).split("UID ")[1].split()[0].rstrip(")")), bytes(d))
            for d in data
            if isinstance(d, bytes)
        ]


async def test_mail_to_case_and_reply_round_trip(
    rabbit_url: str,
    mongo_url: str,
    mongo_db_name: str,
    dovecot: Any,
    smtp_sink: Any,
    api: httpx.AsyncClient,
    config_stack: Stack,
    tmp_path: Path,
) -> None:
    dovecot.reset_mailbox("alice")
    dovecot.reset_mailbox("bob")
    # The session's SMTP sink keeps every test's mail: a customer of this test's own.
    carol = f"carol-{mongo_db_name}@example.org"
    workers = Stack(WORKERS, settings(rabbit_url, mongo_url, mongo_db_name, "e2e-workers"))
    await workers.start()
    store = config_stack.rt.store
    try:
        # -- configuration through the API; the workers learn it by broadcast ------------
        await ok(await api.patch("/settings/settings", json={"poll_interval_seconds": 0.3}))
        await ok(
            await api.patch(
                "/settings/addresses",
                json={"from_address": {"name": "Support", "address": "support@example.com"}},
            )
        )
        await ok(
            await api.put(
                "/outgoing",
                json={
                    "host": "127.0.0.1",
                    "port": smtp_sink.port,
                    "security": "starttls",
                    "username": "alice",
                    "password": ALICE_PW,
                    "ca_file": str(dovecot.cert_file),
                },
            )
        )
        account = await ok(
            await api.post(
                "/accounts",
                json={
                    "name": "support",
                    "protocol": "IMAPS",
                    "host": "127.0.0.1",
                    "port": dovecot.imaps_port,
                    "username": "alice",
                    "password": ALICE_PW,
                    "ca_file": str(dovecot.cert_file),
                    "after_fetch": "seen",
                },
            )
        )
        assert account["password_set"] is True and ALICE_PW not in str(account)

        # -- 1. a new mail opens a case and is acknowledged --------------------------------
        first, first_id = make_mail(
            subject="Printer on floor 3 is broken", sender=f"Carol Customer <{carol}>"
        )
        dovecot.deliver("alice", first)

        async def first_case() -> Any:
            # The case is created a moment before its first mail is attached to it.
            cases = await store.cases.recent()
            if cases and await store.cases.messages(case_number=cases[0].number):
                return cases[0]
            return None

        case = await eventually(first_case, what="a case for the first mail")
        messages = await store.cases.messages(case_number=case.number)
        assert [m.message_id for m in messages if m.direction == "in"] == [first_id]

        async def ack() -> EmailMessage | None:
            mails = sink_mails_to(smtp_sink, carol)
            return mails[0] if mails else None

        acknowledgement = await eventually(ack, what="the acknowledgement at the SMTP sink")
        pattern = (await ok(await api.get("/settings/settings")))["incoming_subject_pattern"]
        assert find_case_reference(pattern, str(acknowledgement["Subject"])) == str(case.number)
        assert acknowledgement["Auto-Submitted"] == "auto-generated"
        assert acknowledgement["In-Reply-To"] == first_id
        assert "support@example.com" in str(acknowledgement["From"])
        ack_id = str(acknowledgement["Message-ID"])

        async def count_in(number: int, expected: int) -> bool:
            msgs = await store.cases.messages(case_number=number)
            return len([m for m in msgs if m.direction == "in"]) == expected

        # -- 2. a reply that keeps the subject joins the same case -------------------------
        reply, _ = make_mail(subject=f"Re: {acknowledgement['Subject']}", sender=carol)
        dovecot.deliver("alice", reply)
        await eventually(lambda: count_in(case.number, 2), what="the subject reply on the case")

        # -- 3. a reply that only carries In-Reply-To joins the same case ------------------
        threaded, _ = make_mail(subject="one more thing", sender=carol, in_reply_to=ack_id)
        dovecot.deliver("alice", threaded)
        await eventually(lambda: count_in(case.number, 3), what="the In-Reply-To reply")
        rules = [
            m.rule
            for m in await store.cases.messages(case_number=case.number)
            if m.direction == "in"
        ]
        assert rules == ["new", "subject_pattern", "references"]
        assert len(await store.cases.recent()) == 1

        # -- 4. a rejecting script sends the mail to the desk; replay after disabling ------
        await ok(
            await api.patch(
                "/settings/processor",
                json={
                    "reject_subject_pattern": "(?i)quarantine",
                    "incoming_scripts": [
                        {"name": "reject_subject", "enabled": True},
                        {"name": "case_matcher", "enabled": True},
                    ],
                },
            )
        )
        rejected, rejected_id = make_mail(
            subject=f"QUARANTINE {acknowledgement['Subject']}", sender=carol
        )
        dovecot.deliver("alice", rejected)

        async def on_desk() -> list[Any]:
            return list((await api.get("/failed")).json())

        desk = await eventually(on_desk, what="the rejected mail on the desk")
        assert len(desk) == 1 and desk[0]["account"] == "support"
        assert "reject_subject" in desk[0]["error"] and "quarantine" in desk[0]["error"]
        assert desk[0]["attempts"] >= 1

        await ok(
            await api.patch(
                "/settings/processor",
                json={
                    "incoming_scripts": [
                        {"name": "reject_subject", "enabled": False},
                        {"name": "case_matcher", "enabled": True},
                    ]
                },
            )
        )
        await eventually(
            lambda: _scripts_disabled(workers), what="the workers to see the disabled script"
        )
        env = cli_env(
            rabbit_url=rabbit_url,
            mongo_url=mongo_url,
            database=mongo_db_name,
            secret_key=SECRET_KEY,
        )
        listed = await asyncio.to_thread(mailroom, "failed", "list", "--json", env=env)
        assert [e["id"] for e in json.loads(listed.stdout)] == [desk[0]["id"]]
        replayed = await asyncio.to_thread(mailroom, "failed", "replay", desk[0]["id"], env=env)
        assert replayed.returncode == 0 and "1 replayed" in replayed.stdout, replayed.stderr
        again = await ok(await api.post(f"/failed/{desk[0]['id']}/replay"))
        assert again["replayed"] is False  # idempotent: the second replay does nothing
        await eventually(lambda: count_in(case.number, 4), what="the replayed mail on the case")
        ids = [m.message_id for m in await store.cases.messages(case_number=case.number)]
        assert ids.count(rejected_id) == 1
        assert (await api.get("/failed")).json() == []

        # -- the mailbox is left as the delete setting says (no: kept and \Seen) -----------
        state = imap_state(dovecot, "alice", ALICE_PW)
        assert len(state) == 4
        assert all(b"\\Seen" in flags for _, flags in state)
        stored_before = await store.raw_emails.count()
        assert stored_before == 4

        # -- an account that deletes read mail leaves its mailbox empty --------------------
        await ok(
            await api.post(
                "/accounts",
                json={
                    "name": "sales",
                    "protocol": "IMAP",
                    "host": "127.0.0.1",
                    "port": dovecot.imap_port,
                    "ca_file": str(dovecot.cert_file),  # security auto: STARTTLS
                    "username": "bob",
                    "password": BOB_PW,
                    "after_fetch": "delete",
                },
            )
        )
        sales, _ = make_mail(subject="Quote request", to="sales@example.com")
        dovecot.deliver("bob", sales)
        await eventually(lambda: _count_is(store, 5), what="the sales mail stored")
        await eventually(lambda: _empty(dovecot, "bob", BOB_PW), what="bob's INBOX emptied")
    finally:
        await workers.stop()

    # -- restarting the fetcher stores no mail twice ---------------------------------------
    restarted = Stack(WORKERS, settings(rabbit_url, mongo_url, mongo_db_name, "e2e-workers-2"))
    await restarted.start()
    try:
        late, _ = make_mail(subject="After the restart", sender="dave@example.org")
        dovecot.deliver("alice", late)
        await eventually(lambda: _count_is(store, 6), what="the mail after the restart")

        async def three_cases() -> bool:
            return len(await store.cases.recent()) == 3

        await eventually(three_cases, what="the case of the mail after the restart")
        assert await store.raw_emails.count() == 6
    finally:
        await restarted.stop()


async def _scripts_disabled(stack: Stack) -> bool:
    return not any(
        s.enabled for s in stack.rt.config.processor.incoming_scripts if s.name == "reject_subject"
    )


async def _count_is(store: Any, expected: int) -> bool:
    return int(await store.raw_emails.count()) == expected


async def _empty(dovecot: Any, user: str, password: str) -> bool:
    return imap_state(dovecot, user, password) == []
