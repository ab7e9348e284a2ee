"""The cases and outbox API on real servers: a mail becomes a case whose thread shows the
acknowledgement with its delivery, the lists page and filter, and an answer sent through
``POST /cases/{n}/reply`` (cc, HTML, an attachment) reaches the SMTP sink once, however
often the call is retried with its Idempotency-Key."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from deploy.local.servers import SmtpSink
from services.processor.service import build as processor_service
from services.sender.service import build as sender_service
from shared.broker import publish
from shared.service import Stack
from shared.topology import MAIL_RECEIVED
from tests.integration.processor.helpers import store_raw
from tests.support import eventually, make_mail, server_settings

SINK_PASSWORD = "alicepw"


@pytest.fixture
async def workers(
    rabbit_url: str,
    mongo_url: str,
    mongo_db_name: str,
    api: httpx.AsyncClient,
    smtp_sink: SmtpSink,
) -> AsyncIterator[Stack]:
    """Processor and sender on the test's database, sending to the SMTP sink."""
    answer = await api.put(
        "/outgoing",
        json={
            "host": "127.0.0.1",
            "port": smtp_sink.port,
            "security": "starttls",
            "username": "alice",
            "password": SINK_PASSWORD,
            "ca_file": str(smtp_sink.cert_file),
        },
    )
    assert answer.status_code == 200, answer.text
    answer = await api.patch(
        "/settings/addresses",
        json={"from_address": {"name": "Support", "address": "support@example.com"}},
    )
    assert answer.status_code == 200, answer.text
    stack = Stack(
        [processor_service, sender_service],
        server_settings(
            rabbit_url=rabbit_url,
            mongo_url=mongo_url,
            database=mongo_db_name,
            instance="cases-api-workers",
        ),
    )
    await stack.start()
    yield stack
    await stack.stop()


async def _mail_in(stack: Stack, subject: str, sender: str, key: str) -> int:
    """Feed a mail to the processor; the number of its case once its acknowledgement is sent."""
    data, _ = make_mail(subject=subject, sender=sender)
    received = await store_raw(stack.rt, data, key)
    await publish(stack.rt.broker, received, routing_key=MAIL_RECEIVED)

    async def sent() -> int | None:
        raw = await stack.rt.store.raw_emails.get(raw_id=received.raw_id)
        if raw is None or raw.case_number is None:
            return None
        entries = await stack.rt.store.outbox.recent(case_number=raw.case_number)
        return raw.case_number if entries and entries[0].status == "sent" else None

    return await eventually(sent, what=f"the acknowledgement of {subject!r} sent")


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def test_thread_shows_the_mail_and_the_acknowledgement_in_the_outbox(
    api: httpx.AsyncClient, workers: Stack
) -> None:
    number = await _mail_in(workers, "Printer on fire", "Carol <carol@example.org>", "k1")
    thread = await _ok(await api.get(f"/cases/{number}"))
    assert thread["case"]["number"] == number
    incoming, ack = thread["mails"]
    assert incoming["direction"] == "in" and incoming["kind"] == "normal"
    assert incoming["rule"] == "new" and incoming["reason"]
    assert incoming["from"][0]["address"] == "carol@example.org"
    assert ack["direction"] == "out" and ack["kind"] == "acknowledgement"
    assert ack["status"] == "sent"
    [delivery] = ack["delivery"]
    assert delivery["address"] == "carol@example.org" and delivery["state"] == "sent"
    assert delivery["reply"].startswith("250")

    outbox = await _ok(await api.get("/outbox", params={"case": number}))
    [entry] = outbox["items"]
    assert entry["mail_id"] == ack["outbox_id"] and entry["recipients"] == {"sent": 1}
    detail = await _ok(await api.get(f"/outbox/{entry['mail_id']}"))
    assert detail["case_link"] == f"/cases/{number}" and detail["retries"] == 0
    assert detail["delivery"][0]["state"] == "sent"

    assert (await api.get("/cases/999999")).status_code == 404
    assert (await api.get("/outbox/nothing-like-it")).status_code == 404


async def test_lists_page_and_filter(api: httpx.AsyncClient, workers: Stack) -> None:
    first = await _mail_in(workers, "Invoice missing", "Dan <dan@example.org>", "p1")
    second = await _mail_in(workers, "Printer jam", "Eve <Eve@Example.org>", "p2")
    third = await _mail_in(workers, "Another printer issue", "Dan <dan@example.org>", "p3")

    page = await _ok(await api.get("/cases", params={"limit": 2}))
    assert [c["number"] for c in page["items"]] == [third, second]
    rest = await _ok(await api.get("/cases", params={"limit": 2, "before": page["next"]}))
    assert [c["number"] for c in rest["items"]] == [first] and rest["next"] is None

    printers = await _ok(await api.get("/cases", params={"subject": "PRINTER"}))
    assert [c["number"] for c in printers["items"]] == [third, second]
    dans = await _ok(await api.get("/cases", params={"participant": "dan@example.org"}))
    assert [c["number"] for c in dans["items"]] == [third, first]
    eves = await _ok(await api.get("/cases", params={"participant": "eve@example.org"}))
    assert [c["number"] for c in eves["items"]] == [second]
    one = await _ok(await api.get("/cases", params={"number": second}))
    assert [c["number"] for c in one["items"]] == [second]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert (await _ok(await api.get("/cases", params={"since": future})))["items"] == []
    assert (await _ok(await api.get("/cases", params={"until": past})))["items"] == []
    dated = await _ok(await api.get("/cases", params={"since": past, "until": future}))
    assert len(dated["items"]) == 3

    outbox = await _ok(await api.get("/outbox", params={"limit": 2}))
    assert len(outbox["items"]) == 2 and outbox["next"]
    more = await _ok(await api.get("/outbox", params={"limit": 2, "after": outbox["next"]}))
    assert len(more["items"]) == 1 and more["next"] is None
    seen = {e["mail_id"] for e in outbox["items"] + more["items"]}
    assert len(seen) == 3
    to_dan = await _ok(await api.get("/outbox", params={"recipient": "DAN@example.org"}))
    assert {e["case_number"] for e in to_dan["items"]} == {first, third}
    sent = await _ok(await api.get("/outbox", params={"status": "sent"}))
    assert len(sent["items"]) == 3
    assert (await _ok(await api.get("/outbox", params={"status": "failed"})))["items"] == []
    bad = await api.get("/outbox", params={"after": "yesterday"})
    assert bad.status_code == 422 and "query.after" in bad.json()["detail"]


async def test_an_answer_is_sent_once_with_cc_html_and_attachment(
    api: httpx.AsyncClient, workers: Stack, smtp_sink: SmtpSink
) -> None:
    number = await _mail_in(workers, "Need the manual", "Fay <fay@example.org>", "r1")
    body = {
        "cc": [{"name": "Boss", "address": "boss@example.org"}],
        "text": "Here is the manual.",
        "html": "<p>Here is <b>the manual</b>.</p>",
        "attachments": [
            {
                "filename": "manual.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(b"%PDF-1.4 manual").decode(),
            }
        ],
    }
    headers = {"Idempotency-Key": "answer-1"}
    first = await _ok(await api.post(f"/cases/{number}/reply", json=body, headers=headers), 202)
    again = await _ok(await api.post(f"/cases/{number}/reply", json=body, headers=headers), 202)
    assert first == again
    assert first["to"] == [{"name": "Fay", "address": "fay@example.org"}]
    other = await api.post(
        f"/cases/{number}/reply", json={**body, "text": "Something else"}, headers=headers
    )
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]

    async def delivered() -> Any:
        # 404 until the sender takes the mail: it opens the outbox entry when it claims it.
        response = await api.get(first["outbox"])
        if response.status_code == 404:
            return None
        detail = await _ok(response)
        return detail if detail["status"] == "sent" else None

    detail = await eventually(delivered, what="the answer sent")
    assert {r["address"]: r["state"] for r in detail["delivery"]} == {
        "fay@example.org": "sent",
        "boss@example.org": "sent",
    }
    copies = [m for m in smtp_sink.messages() if m["Message-ID"] == first["message_id"]]
    assert len(copies) == 1, "sent once"
    [mail] = copies
    assert f"[Case#{number}]" in str(mail["Subject"]) and "boss@example.org" in str(mail["Cc"])
    assert mail["In-Reply-To"]
    parts = {part.get_content_type(): part for part in mail.walk()}
    assert "text/html" in parts and "text/plain" in parts
    assert parts["application/pdf"].get_filename() == "manual.pdf"
    assert parts["application/pdf"].get_content() == b"%PDF-1.4 manual"

    thread = await _ok(await api.get(f"/cases/{number}"))
    answer = next(m for m in thread["mails"] if m["outbox_id"] == first["mail_id"])
    assert answer["kind"] == "reply" and answer["html"] == body["html"]
    assert answer["attachments"][0]["filename"] == "manual.pdf"


async def test_bad_answers_are_refused_naming_the_field(
    api: httpx.AsyncClient, config_stack: Stack
) -> None:
    case, _ = await config_stack.rt.store.cases.create_for_raw(
        raw_id="raw-x", subject="Hello", contact=None
    )
    url = f"/cases/{case.number}/reply"
    assert (await api.post("/cases/424242/reply", json={"text": "hi"})).status_code == 404
    cases = [
        ({"to": [{"address": "a@example.org"}]}, "text"),
        ({"text": "hi"}, "to"),
        ({"text": "hi", "to": [{"address": "not an address"}]}, "to"),
        (
            {
                "text": "hi",
                "to": [{"address": "a@example.org"}],
                "attachments": [{"filename": "a.txt", "content_base64": "***"}],
            },
            "attachments.0.content_base64",
        ),
        ({"text": "hi", "to": [{"address": "a@example.org"}], "subject": "a\r\nBcc: x"}, "subject"),
    ]
    for body, field in cases:
        answer = await api.post(url, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert field in answer.json()["detail"], (body, answer.text)
    bad_key = await api.post(
        url,
        json={"text": "hi", "to": [{"address": "a@example.org"}]},
        headers={"Idempotency-Key": "with space"},
    )
    assert bad_key.status_code == 422 and "idempotency-key" in bad_key.json()["detail"].lower()


async def test_answers_go_through_the_account_the_case_came_in_on_or_the_one_chosen(
    api: httpx.AsyncClient, workers: Stack, smtp_sink: SmtpSink
) -> None:
    account = {"protocol": "IMAP", "host": "imap.invalid", "username": "u", "password": "p",
               "enabled": False}  # fmt: skip
    own_smtp = {"outgoing_host": "127.0.0.1", "outgoing_port": smtp_sink.port,
                "outgoing_security": "starttls", "ca_file": str(smtp_sink.cert_file),
                "outgoing_credentials": "own", "outgoing_username": "bob",
                "outgoing_password": "bobpw"}  # fmt: skip
    for name, fields in (
        ("support", {**own_smtp, "from_address": "help@example.com", "from_name": "Help"}),
        ("sales", {"from_address": "sales@example.com", "from_name": "Sales"}),
        ("robot", {"available_to_users": False}),
    ):
        await _ok(await api.post("/accounts", json={**account, **fields, "name": name}), 201)
    number = await _mail_in(workers, "Broken fax", "Gus <gus@example.org>", "k-route")

    async def sent(answer: dict[str, Any]) -> Any:
        async def found() -> list[Any] | None:
            ids = answer["message_id"]
            return [m for m in smtp_sink.messages() if m["Message-ID"] == ids] or None

        return (await eventually(found, what="the answer at the sink"))[0]

    # The acknowledgement and an answer go out through support, the case's account: its
    # SMTP login and its From; the Message-ID the API promised is the one sent.
    ack = [m for m in smtp_sink.messages() if m["X-Sink-Rcpt-To"] == "gus@example.org"]
    assert ack and ack[0]["From"] == "Help <help@example.com>" and ack[0]["X-Sink-Auth"] == "bob"
    reply = {"text": "Try turning it off and on."}
    answer = await _ok(await api.post(f"/cases/{number}/reply", json=reply), 202)
    mail = await sent(answer)
    assert mail["From"] == "Help <help@example.com>" and mail["X-Sink-Auth"] == "bob"

    chosen = await _ok(
        await api.post(f"/cases/{number}/reply", json={**reply, "account": "sales"}), 202
    )
    mail = await sent(chosen)
    assert mail["From"] == "Sales <sales@example.com>" and mail["X-Sink-Auth"] == "alice"

    for name, why in (("robot", "not made available to users"), ("nobody", "no incoming")):
        refused = await api.post(f"/cases/{number}/reply", json={**reply, "account": name})
        assert refused.status_code == 422 and "account: " in refused.text and why in refused.text
