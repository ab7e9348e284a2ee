"""Attachment bytes in GridFS: stored once per content, whatever crash interrupts the storing,
readable through the config API, and never stored for a mail over the size limit.

Crash proof as in test_process: a crash leaves the state of some step, then the redelivered
mail runs ``process_mail`` again from the start. The interrupted states are built directly.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest

from services.config.service import build as config_service
from services.processor.process import process_mail
from shared.models.config import ProcessorSettings, SystemConfig
from shared.runtime import Runtime
from shared.service import Stack
from shared.store.attachments import CHUNK_SIZE, content_id
from tests.integration.processor.helpers import store_raw
from tests.support import api_client, server_settings

BIG = os.urandom(CHUNK_SIZE * 2 + 1000)  # three chunks
SMALL = "Grüße, résumé attached\n".encode()
OPERATOR_TOKEN = "operator-token-attachments-0123"


def mail_with_files() -> bytes:
    """A mail with the big file twice (a forward quoting it) and one small text file."""
    msg = EmailMessage()
    msg["From"] = "Customer <customer@example.org>"
    msg["To"] = "support@example.com"
    msg["Subject"] = "Logs"
    msg["Message-ID"] = "<files@example.org>"
    msg.set_content("see the logs")
    msg.add_attachment(BIG, maintype="application", subtype="octet-stream", filename="a.bin")
    msg.add_attachment(SMALL, maintype="text", subtype="plain", filename="Grüße.txt")
    msg.add_attachment(BIG, maintype="application", subtype="octet-stream", filename="b.bin")
    return msg.as_bytes()


async def counts(rt: Runtime) -> tuple[int, int]:
    """(files, chunks) in the attachments bucket."""
    db = rt.store.db
    return (
        await db["attachments.files"].count_documents({}),
        await db["attachments.chunks"].count_documents({}),
    )


async def test_each_content_is_stored_once_whatever_the_crash(rt: Runtime) -> None:
    msg = await store_raw(rt, mail_with_files(), "1:1")
    big_id = await content_id(BIG)
    # crash 1: in the middle of writing the big file (its first chunk only, no file document)
    await rt.store.db["attachments.chunks"].insert_one(
        {"files_id": big_id, "n": 0, "data": BIG[:CHUNK_SIZE]}
    )
    # crash 2: the small file was stored, the message naming it was not
    small_id = await rt.store.cases.attachments.put(data=SMALL)

    first = await process_mail(rt, msg)
    # crash 3: everything done but the status (the redelivery runs every step again)
    await rt.store.raw_emails.set_status(raw_id=msg.raw_id, status="announced")
    second = await process_mail(rt, msg)

    assert first.case_number is not None and first.case_number == second.case_number
    assert await counts(rt) == (2, 3 + 1)  # two contents: three chunks and one
    [message] = await rt.store.cases.messages(case_number=first.case_number)
    files = [(a.filename, a.size, a.file_id) for a in message.attachments]
    assert files == [
        ("a.bin", len(BIG), big_id),
        ("Grüße.txt", len(SMALL), small_id),
        ("b.bin", len(BIG), big_id),
    ]
    assert await rt.store.cases.attachments.read(file_id=big_id) == BIG
    assert await rt.store.cases.attachments.read(file_id=small_id) == SMALL


async def test_a_mail_over_the_size_limit_stores_no_attachment(rt: Runtime) -> None:
    rt.config = SystemConfig(processor=ProcessorSettings(max_mail_size_bytes=100_000))
    outcome = await process_mail(rt, await store_raw(rt, mail_with_files(), "1:2"))
    assert outcome.case_number is not None
    [message] = await rt.store.cases.messages(case_number=outcome.case_number)
    assert [(a.omitted, a.file_id) for a in message.attachments] == [(True, None)] * 3
    assert any("over the limit" in note for note in message.notes)
    assert await counts(rt) == (0, 0)


@pytest.fixture
async def config_api(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> AsyncIterator[Stack]:
    """The config service with an operator token."""
    stack = Stack(
        [config_service],
        server_settings(
            rabbit_url=rabbit_url,
            mongo_url=mongo_url,
            database=mongo_db_name,
            instance="attachments-api",
            operator_token=OPERATOR_TOKEN,
        ),
    )
    await stack.start()
    yield stack
    await stack.stop()


async def test_operators_download_attachments_through_the_api(
    rt: Runtime, config_api: Stack
) -> None:
    msg = await store_raw(rt, mail_with_files(), "1:3")
    number = (await process_mail(rt, msg)).case_number
    rt.config = SystemConfig(processor=ProcessorSettings(max_mail_size_bytes=100_000))
    big = await store_raw(rt, mail_with_files(), "1:4")
    stripped = (await process_mail(rt, big)).case_number
    base = f"/cases/{number}/messages/{msg.raw_id}/attachments"
    async with api_client(config_api, OPERATOR_TOKEN) as operator:
        first = await operator.get(f"{base}/0")
        assert first.status_code == 200 and first.content == BIG
        assert first.headers["content-type"] == "application/octet-stream"
        text = await operator.get(f"{base}/1")
        assert text.content == SMALL and text.headers["x-content-type-options"] == "nosniff"
        disposition = text.headers["content-disposition"]
        assert disposition.startswith("attachment;") and "UTF-8''Gr%C3%BC%C3%9Fe.txt" in disposition
        assert (await operator.get(f"{base}/3")).status_code == 404
        assert (
            await operator.get(f"/cases/{number}/messages/other/attachments/0")
        ).status_code == 404
        omitted = await operator.get(f"/cases/{stripped}/messages/{big.raw_id}/attachments/0")
        assert omitted.status_code == 404 and "size" in omitted.json()["detail"]
    async with api_client(config_api, "wrong-token-0123456789") as stranger:
        assert (await stranger.get(f"{base}/0")).status_code == 401


async def test_concurrent_writers_of_one_content_make_one_readable_file(rt: Runtime) -> None:
    # Two processors storing the same attachment at once must not destroy each other's chunks.
    ids = await asyncio.gather(
        *(rt.store.cases.attachments.put_many(contents=[BIG, SMALL]) for _ in range(4))
    )
    assert len({tuple(i) for i in ids}) == 1
    assert await counts(rt) == (2, 3 + 1)
    assert await rt.store.cases.attachments.read(file_id=ids[0][0]) == BIG
