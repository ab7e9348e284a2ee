"""The Cases and Outbox pages on real servers, as a person uses them: a case's thread shows
the mail and its acknowledgement with the delivery, the lists search and link to each
other, an operator answers from the page (once, however often the form is sent), a viewer
sees no answer form, and a post without the session's CSRF token is refused."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from services.config.users import add_user
from shared.models.users import Role
from shared.service import Stack
from tests.integration.config.test_cases_api import _mail_in, workers
from tests.secret_scan import SCAN
from tests.support import console_client, eventually, sign_in

PASSWORD = SCAN.secret("password of a console user", "console-cases-password-0123")

__all__ = ["workers"]  # the fixture, shared with the API tests


@contextlib.asynccontextmanager
async def _signed_in(stack: Stack, role: Role) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    await add_user(stack.rt, name=role, role=role, password=PASSWORD, who="test")
    async with console_client(stack) as client:
        yield client, await sign_in(client, role, PASSWORD)


@pytest.fixture
async def operator(config_stack: Stack) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A signed-in operator's browser and its CSRF token."""
    async with _signed_in(config_stack, "operator") as signed_in:
        yield signed_in


async def test_a_case_thread_shows_the_acknowledgement_in_the_outbox(
    operator: tuple[httpx.AsyncClient, str], workers: Stack
) -> None:
    client, _ = operator
    number = await _mail_in(workers, "Scanner is jammed", "Gil <gil@example.org>", "c1")
    listed = await client.get("/console/cases", params={"subject": "scanner"})
    assert listed.status_code == 200
    assert f'href="/console/cases/{number}"' in listed.text and "Scanner is jammed" in listed.text
    empty = await client.get("/console/cases", params={"participant": "nobody@example.org"})
    assert "No case matches" in empty.text

    page = await client.get(f"/console/cases/{number}")
    assert page.status_code == 200
    assert "Received" in page.text and "Acknowledgement" in page.text
    assert "gil@example.org" in page.text and ">new<" in page.text  # the routing rule
    ack = re.search(r'href="/console/outbox/(ack-[^"]+)"', page.text)
    assert ack, "the acknowledgement links to its outbox entry"
    assert "250" in page.text  # the server's answer per recipient

    outbox = await client.get("/console/outbox", params={"case": str(number)})
    assert f"/console/outbox/{ack.group(1)}" in outbox.text
    mail = await client.get(f"/console/outbox/{ack.group(1)}")
    assert mail.status_code == 200 and "gil@example.org" in mail.text
    assert f'href="/console/cases/{number}"' in mail.text and "sent" in mail.text
    assert (await client.get("/console/cases/999999")).status_code == 404


async def test_an_operator_answers_from_the_page_once(
    operator: tuple[httpx.AsyncClient, str], workers: Stack
) -> None:
    client, csrf = operator
    number = await _mail_in(workers, "Where is my order", "Hal <hal@example.org>", "c2")
    page = await client.get(f"/console/cases/{number}")
    assert "Send answer" in page.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert key
    form = {
        "csrf_token": csrf,
        "idempotency_key": key.group(1),
        "cc": "boss@example.org",
        "text": "It is on its way.",
    }
    files = {"attachment": ("note.txt", b"tracking 123", "text/plain")}
    for _ in range(2):  # a double click
        sent = await client.post(f"/console/cases/{number}/reply", data=form, files=files)
        assert sent.status_code == 303 and sent.headers["location"] == f"/console/cases/{number}"

    async def answered() -> str | None:
        text = (await client.get(f"/console/cases/{number}")).text
        return text if text.count("It is on its way.") == 1 and "Answer</span>" in text else None

    thread = await eventually(answered, what="the answer in the thread")
    assert "boss@example.org" in thread
    entries = await workers.rt.store.outbox.recent(case_number=number)
    assert [e.kind for e in entries].count("reply") == 1

    refused = await client.post(f"/console/cases/{number}/reply", data={**form, "text": ""})
    assert refused.status_code == 303
    shown = await client.get(refused.headers["location"])
    assert "Not sent" in shown.text and "text" in shown.text


async def test_a_viewer_sees_no_answer_form_and_posts_need_the_csrf_token(
    config_stack: Stack, operator: tuple[httpx.AsyncClient, str]
) -> None:
    case, _ = await config_stack.rt.store.cases.create_for_raw(
        raw_id="raw-v", subject="Quiet case", contact=None
    )
    async with _signed_in(config_stack, "viewer") as (viewer, viewer_csrf):
        page = await viewer.get(f"/console/cases/{case.number}")
        assert page.status_code == 200 and "Quiet case" in page.text
        assert "Send answer" not in page.text and "/reply" not in page.text
        posted = await viewer.post(
            f"/console/cases/{case.number}/reply",
            data={"csrf_token": viewer_csrf, "to": "a@example.org", "text": "hi"},
        )
        assert posted.status_code == 403 and "operator" in posted.text
        assert (await viewer.get("/console/outbox")).status_code == 200
    client, _ = operator
    forged = await client.post(
        f"/console/cases/{case.number}/reply", data={"to": "a@example.org", "text": "hi"}
    )
    assert forged.status_code == 403 and "did not come from this console" in forged.text
    assert await config_stack.rt.store.outbox.recent(case_number=case.number) == []
