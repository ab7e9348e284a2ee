"""The Failed incoming emails pages as an operator and a viewer use them, against the real
config service, MongoDB stand-in and RabbitMQ (and a processor where a replay must make a
case): filters and pages, a mail's page, replay one, selected and all matching, delete."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import httpx
import pytest

from services.config.users import add_user
from services.config.web.pages import failed as failed_pages
from services.processor.service import build as processor_service
from shared.models.messages import MailReceived
from shared.models.records import FailedMail
from shared.models.users import Role
from shared.service import Stack
from tests.integration.config.test_desk import failed_mail
from tests.secret_scan import SCAN
from tests.support import console_client, eventually, server_settings, sign_in

PASSWORD = SCAN.secret("password of a console user", "console-desk-password-0123")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROW = re.compile(r'href="/console/failed/([^"/]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
NEXT = re.compile(r'href="(/console/failed\?[^"]*after=[^"]*)"')


@contextlib.asynccontextmanager
async def signed_in(stack: Stack, role: Role) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A console client signed in as a new user with ``role``, and its CSRF token."""
    await add_user(stack.rt, name=role, role=role, password=PASSWORD, who="test")
    async with console_client(stack) as client:
        yield client, await sign_in(client, role, PASSWORD)


async def entry(stack: Stack, n: int, *, account: str, sender: str, error: str) -> FailedMail:
    """A desk entry failed ``n`` minutes after T0 (no stored mail behind it)."""
    return await stack.rt.store.desk.record(
        failed_id=f"processor:e{n:03d}",
        queue="processor.failed",
        routing_key="mail.received",
        ref=f"e{n:03d}",
        body=MailReceived(raw_id=f"e{n:03d}", account=account, source_key=f"1:{n}").model_dump(
            mode="json"
        ),
        account=account,
        error=error,
        attempts=1,
        sender=sender,
        subject=f"mail {n}",
        failed_at=T0 + timedelta(minutes=n),
    )


def rows(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return [unquote(i) for i in ROW.findall(page.text)]


async def test_a_replay_from_the_page_makes_a_case_and_the_mail_links_to_it(
    config_stack: Stack, rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    failed_id = await failed_mail(config_stack, "ann@example.org", "support", "rejected: x")
    processor = Stack(
        [processor_service],
        server_settings(
            rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, instance="desk"
        ),
    )
    await processor.start()
    try:
        async with signed_in(config_stack, "operator") as (browser, csrf):
            page = await browser.get(f"/console/failed/{failed_id}")
            assert page.status_code == 200
            assert "rejected: x" in page.text and "from ann@example.org" in page.text
            assert "ann@example.org" in page.text and ">Replay</button>" in page.text
            raw = await browser.get(f"/console/failed/{failed_id}/raw")
            assert raw.headers["content-disposition"].startswith("attachment;")
            assert b"Subject: from ann@example.org" in raw.content

            done = await browser.post(
                "/console/failed/replay",
                data={"csrf_token": csrf, "ids": failed_id, "back": f"/console/failed/{failed_id}"},
            )
            assert done.status_code == 303
            assert done.headers["location"] == f"/console/failed/{failed_id}"

            async def case_link() -> str | None:
                shown = await browser.get(f"/console/failed/{failed_id}")
                found = re.search(r'href="/console/cases/(\d+)"', shown.text)
                return found.group(1) if found else None

            number = await eventually(case_link, what="the mail's page links to its case")
            [case] = await config_stack.rt.store.cases.recent()
            assert int(number) == case.number
            shown = await browser.get(f"/console/failed/{failed_id}")
            assert "replayed" in shown.text and ">operator<" in shown.text  # the audit trail
            assert ">Replay</button>" not in shown.text  # replayed: nothing more to replay
    finally:
        await processor.stop()


async def test_filters_and_pages_keep_the_order_without_gaps(config_stack: Stack) -> None:
    accounts = ("support", "sales")
    for n in range(60):
        error = "unparseable mail" if n % 5 == 0 else "rejected by script"
        await entry(
            config_stack, n, account=accounts[n % 2], sender=f"c{n}@example.org", error=error
        )
    newest_first = [f"processor:e{n:03d}" for n in reversed(range(60))]
    async with signed_in(config_stack, "viewer") as (browser, _):
        first = await browser.get("/console/failed")
        assert rows(first) == newest_first[:50]
        older = NEXT.search(first.text)
        assert older
        second = await browser.get(older.group(1).replace("&amp;", "&"))
        assert rows(second) == newest_first[50:]
        assert not NEXT.search(second.text)

        sales = rows(await browser.get("/console/failed", params={"account": "sales"}))
        assert sales == [i for i in newest_first if int(i[-3:]) % 2 == 1]
        by_text = await browser.get(
            "/console/failed", params={"error": "UNPARSEABLE", "sender": "C10@"}
        )
        assert rows(by_text) == ["processor:e010"]
        window = await browser.get(
            "/console/failed",
            params={"since": "2026-03-01T12:10", "until": "2026-03-01T12:12", "account": ""},
        )
        assert rows(window) == ["processor:e012", "processor:e011", "processor:e010"]
        wrong = await browser.get("/console/failed", params={"since": "someday"})
        assert wrong.status_code == 422 and "since" in wrong.text


async def test_replay_all_matching_shows_the_count_and_replays_only_those(
    config_stack: Stack,
) -> None:
    for n in range(6):
        await entry(
            config_stack, n, account="sales" if n < 4 else "support", sender="x@y.org", error="e"
        )
    async with signed_in(config_stack, "operator") as (browser, _):
        listing = await browser.get("/console/failed", params={"account": "sales"})
        assert "/console/failed/replay-all?account=sales" in listing.text
        confirm = await browser.get("/console/failed/replay-all", params={"account": "sales"})
        assert confirm.status_code == 200
        assert '<strong class="big">4</strong> failed mails match' in confirm.text
        form = dict(
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', confirm.text)
        )
        assert form["account"] == "sales" and form["until"]
        done = await browser.post("/console/failed/replay-all", data=form)
        assert done.status_code == 303
        assert unquote(done.headers["set-cookie"]).count("4 of 4 replayed") == 1
    left = await config_stack.rt.store.desk.search()
    assert sorted(e.account or "" for e in left) == ["support", "support"]


async def test_a_viewer_sees_the_desk_without_buttons_and_cannot_replay(
    config_stack: Stack,
) -> None:
    failed_id = await failed_mail(config_stack, "bob@example.org", "support", "rejected: y")
    async with signed_in(config_stack, "viewer") as (browser, csrf):
        listing = await browser.get("/console/failed")
        assert rows(listing) == [failed_id]
        shown = await browser.get(f"/console/failed/{failed_id}")
        for page in (listing, shown):
            for button in ("Replay selected", "Replay all", ">Replay</button>", "Delete…"):
                assert button not in page.text
            assert 'name="ids"' not in page.text and "Delete selected" not in page.text
        refused = await browser.post(
            "/console/failed/replay", data={"csrf_token": csrf, "ids": failed_id}
        )
        assert refused.status_code == 403
    assert (await config_stack.rt.store.desk.get(failed_id=failed_id)).status == "failed"


async def test_a_post_without_the_csrf_token_is_refused_and_delete_asks_first(
    config_stack: Stack,
) -> None:
    failed_id = await failed_mail(config_stack, "cy@example.org", "support", "rejected: z")
    async with signed_in(config_stack, "operator") as (browser, csrf):
        for action in ("replay", "delete"):
            refused = await browser.post(f"/console/failed/{action}", data={"ids": failed_id})
            assert refused.status_code == 403 and "did not come from this console" in refused.text
        assert (await config_stack.rt.store.desk.get(failed_id=failed_id)).status == "failed"

        asked = await browser.post(
            "/console/failed/delete", data={"csrf_token": csrf, "ids": failed_id}
        )
        assert asked.status_code == 200 and 'name="confirmed" value="yes"' in asked.text
        assert (await config_stack.rt.store.desk.get(failed_id=failed_id)).status == "failed"
        deleted = await browser.post(
            "/console/failed/delete",
            data={"csrf_token": csrf, "ids": failed_id, "confirmed": "yes"},
        )
        assert deleted.status_code == 303
        assert (await config_stack.rt.store.desk.get(failed_id=failed_id)).status == "deleted"
        nothing = await browser.post("/console/failed/replay", data={"csrf_token": csrf})
        assert nothing.status_code == 422 and "ids" in nothing.text


async def test_replay_all_counts_and_replays_at_most_a_batch(
    config_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failed_pages, "REPLAY_ALL_AT_ONCE", 3)
    for n in range(5):
        await entry(config_stack, n, account="sales", sender="x@y.org", error="e")
    async with signed_in(config_stack, "operator") as (browser, _):
        confirm = await browser.get("/console/failed/replay-all")
        assert "More than 3</strong> failed mails match" in confirm.text
        assert "Replay 3 mails" in confirm.text
        done = await browser.post(
            "/console/failed/replay-all", data=dict(HIDDEN.findall(confirm.text))
        )
        assert "3 of 3 replayed (the most one replay-all does" in unquote(
            done.headers["set-cookie"]
        )
    left = await config_stack.rt.store.desk.search()
    assert [e.id for e in left] == ["processor:e001", "processor:e000"]  # the oldest wait
