"""The failed-mail desk's search, show, delete and audit through the API on real servers."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx

from services.config import desk
from shared.models.messages import MailReceived, utcnow
from shared.models.records import RawEmail
from shared.service import Stack
from tests.support import make_mail


async def failed_mail(config_stack: Stack, sender: str, account: str, error: str) -> str:
    data, _ = make_mail(subject=f"from {sender}", sender=sender)
    record = RawEmail(
        account=account,
        source_key=f"1:{sender}",
        folder="INBOX",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    stored, _ = await config_stack.rt.store.raw_emails.insert(record=record, data=data)
    await config_stack.rt.store.raw_emails.record_failure(raw_id=stored.id, error=error)
    body = MailReceived(raw_id=stored.id, account=account, source_key=record.source_key)
    entry = await desk.record_dead_letter(
        config_stack.rt, routing_key="mail.received", body=body.model_dump(mode="json"), headers={}
    )
    assert entry is not None
    return entry.id


async def test_search_show_delete_and_audit(config_stack: Stack, api: httpx.AsyncClient) -> None:
    one = await failed_mail(config_stack, "ann@example.org", "support", "rejected by script 'x'")
    two = await failed_mail(config_stack, "bob@example.net", "sales", "unparseable mail: empty")

    async def ids(**params: str) -> list[str]:
        response = await api.get("/failed", params=params)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()]

    assert set(await ids()) == {one, two}
    assert await ids(account="sales") == [two]
    assert await ids(sender="ANN@") == [one]
    assert await ids(error="UNPARSEABLE") == [two]
    assert await ids(since=(utcnow() + timedelta(hours=1)).isoformat()) == []
    assert set(await ids(until=(utcnow() + timedelta(hours=1)).isoformat())) == {one, two}

    shown = (await api.get(f"/failed/{one}")).json()
    assert shown["sender"] == "ann@example.org" and shown["account"] == "support"
    assert b"ann@example.org" in (await api.get(f"/failed/{one}/raw")).content
    assert (await api.get(f"/failed/{one}/parsed")).json()["subject"] == "from ann@example.org"

    assert (await api.delete(f"/failed/{two}")).json()["note"] == "deleted"
    assert (await api.delete(f"/failed/{two}")).json()["note"] == "already deleted"
    assert await ids() == [one]
    audit = (await api.get(f"/failed/{two}/audit")).json()
    assert [(a["action"], a["outcome"]) for a in audit] == [
        ("delete", "deleted"),
        ("delete", "skipped"),
    ]
    assert (await api.get("/failed/nope")).status_code == 404


async def test_pages_follow_the_link_header_and_count_matches(
    config_stack: Stack, api: httpx.AsyncClient
) -> None:
    ids = [
        await failed_mail(config_stack, f"c{n}@example.org", "support", f"error {n % 2}")
        for n in range(5)
    ]
    seen, url = [], "/failed?limit=2"
    while url:
        response = await api.get(url)
        assert response.status_code == 200, response.text
        seen += [e["id"] for e in response.json()]
        link = response.headers.get("link", "")
        url = link[1 : link.index(">")] if link else ""
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    assert (await api.get("/failed/count", params={"error": "ERROR 1"})).json() == {"count": 2}
    assert (await api.get("/failed", params={"after": "nonsense"})).status_code == 422
