"""The Graph mailbox adapter against the local Graph stand-in: start positions, the delta
cursor, shared mailboxes, folders, each disposal, throttling and 5xx per mailbox, refused
tokens and big mail."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime

import pytest

from deploy.local.graph_standin import GraphStandin
from deploy.local.oauth_issuer import OAuthIssuer
from shared.auth import AuthFailed, CredentialHealth
from shared.errors import Permanent
from shared.mailbox.base import FetchedMail, MessageRef
from shared.mailbox.graph import GraphMailbox, RetryLater
from shared.models.config import IncomingAccount
from tests.integration.graph.conftest import MailboxMaker
from tests.integration.graph.contract_server import APP_SECRET, GraphContractServer
from tests.integration.mailbox_contract.contract import Remaining

pytestmark = pytest.mark.integration


def mail(n: int, body: bytes = b"Hello\r\n") -> bytes:
    return (
        b"From: Customer <customer@example.org>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: question %d\r\n"
        b"Message-ID: <graph-%d@example.org>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n" % (n, n)
    ) + body


async def drain(mailbox: GraphMailbox, refs: list[MessageRef], **kw: int) -> list[FetchedMail]:
    return [m async for m in mailbox.fetch(refs, **kw)]


async def test_all_mail_is_listed_oldest_first_fetched_raw_and_the_cursor_resumes(
    graph_server: GraphContractServer, open_mailbox: MailboxMaker
) -> None:
    for n in range(3):
        await graph_server.deliver(mail(n))
    mailbox = open_mailbox(graph_server.account())
    status = await mailbox.connect()
    assert not status.supports_idle
    listing = await mailbox.list_new(None)
    fetched = await drain(mailbox, list(listing.refs))
    assert [f.data for f in fetched] == [mail(n) for n in range(3)]
    assert all(f.complete for f in fetched)
    keys = {r.source_key for r in listing.refs}
    assert listing.cursor_after(keys - {listing.refs[0].source_key}) is None
    cursor = listing.cursor_after(keys)
    assert cursor is not None
    await mailbox.mark_done(listing.refs, disposal="seen")
    left = await graph_server.remaining()
    assert left == [Remaining(f"<graph-{n}@example.org>", True) for n in range(3)]
    # Read flags are no news; a new mail is.
    assert list((await mailbox.list_new(cursor)).refs) == []
    await graph_server.deliver(mail(3))
    again = await mailbox.list_new(cursor)
    assert [f.data for f in await drain(mailbox, list(again.refs))] == [mail(3)]


async def test_start_position_new_takes_only_mail_arriving_later(
    graph_server: GraphContractServer, open_mailbox: MailboxMaker
) -> None:
    await graph_server.deliver(mail(1))
    mailbox = open_mailbox(graph_server.account(start_position="new"))
    await mailbox.connect()
    listing = await mailbox.list_new(None)
    assert list(listing.refs) == []
    cursor = listing.cursor_after(set())
    assert cursor is not None
    await graph_server.deliver(mail(2))
    later = await mailbox.list_new(cursor)
    assert [f.data for f in await drain(mailbox, list(later.refs))] == [mail(2)]


async def test_start_position_since_takes_mail_from_that_day(
    graph_server: GraphContractServer, graph_standin: GraphStandin, open_mailbox: MailboxMaker
) -> None:
    graph_standin.deliver(graph_server.upn, mail(1), received=datetime(2026, 1, 5, tzinfo=UTC))
    graph_standin.deliver(graph_server.upn, mail(2), received=datetime(2026, 3, 1, tzinfo=UTC))
    account = graph_server.account(start_position="since", start_date=date(2026, 2, 1))
    mailbox = open_mailbox(account)
    await mailbox.connect()
    listing = await mailbox.list_new(None)
    assert [f.data for f in await drain(mailbox, list(listing.refs))] == [mail(2)]


async def test_many_mails_come_over_several_delta_pages(
    graph_server: GraphContractServer, graph_standin: GraphStandin, open_mailbox: MailboxMaker
) -> None:
    for n in range(250):
        graph_standin.deliver(graph_server.upn, mail(n))
    mailbox = open_mailbox(graph_server.account())
    await mailbox.connect()
    listing = await mailbox.list_new(None)
    assert len(listing.refs) == 250
    assert len({r.source_key for r in listing.refs}) == 250
    skip = [r for r in graph_standin.requests if "$skiptoken" in r.query]
    assert skip, "the listing followed @odata.nextLink"


async def test_a_shared_mailbox_is_read_with_the_apps_permission(
    graph_server: GraphContractServer, graph_standin: GraphStandin, open_mailbox: MailboxMaker
) -> None:
    shared = f"shared-{graph_server.upn}"
    graph_standin.add_mailbox(shared)
    graph_standin.deliver(shared, mail(7))
    account = graph_server.account(graph_mailbox=shared)
    mailbox = open_mailbox(account)
    with pytest.raises(Permanent, match="access policy") as refused:
        await mailbox.connect()
        await mailbox.list_new(None)
    assert shared in str(refused.value)
    graph_standin.allow(graph_server.app_user, shared)
    listing = await mailbox.list_new(None)
    assert [f.data for f in await drain(mailbox, list(listing.refs))] == [mail(7)]
    assert all(r.mailbox == shared for r in graph_standin.requests[-2:])


async def test_a_chosen_folder_is_found_in_the_folder_list(
    graph_server: GraphContractServer, graph_standin: GraphStandin, open_mailbox: MailboxMaker
) -> None:
    support = graph_standin.add_folder(graph_server.upn, "Support", parent="inbox")
    graph_standin.deliver(graph_server.upn, mail(1))
    graph_standin.deliver(graph_server.upn, mail(2), folder=support)
    mailbox = open_mailbox(graph_server.account(folder="Inbox/Support"))
    status = await mailbox.connect()
    assert status.exists == 1
    listing = await mailbox.list_new(None)
    assert [f.data for f in await drain(mailbox, list(listing.refs))] == [mail(2)]
    cursor = listing.cursor_after({r.source_key for r in listing.refs})
    assert cursor is not None and json.loads(cursor)["folder"] == support
    missing = open_mailbox(graph_server.account(folder="Inbox/Nowhere"))
    with pytest.raises(Permanent, match="Nowhere"):
        await missing.connect()


async def test_move_puts_mail_into_the_move_to_folder(
    graph_server: GraphContractServer, graph_standin: GraphStandin, open_mailbox: MailboxMaker
) -> None:
    done = graph_standin.add_folder(graph_server.upn, "Processed")
    await graph_server.deliver(mail(1))
    fields = graph_server.account().model_dump()
    mailbox = open_mailbox(
        IncomingAccount.model_validate(
            {**fields, "after_fetch": "move", "move_to_folder": "Processed"}
        )
    )
    await mailbox.connect()
    listing = await mailbox.list_new(None)
    await mailbox.mark_done(listing.refs, disposal="move")
    assert await graph_server.remaining() == []
    assert graph_standin.remaining(graph_server.upn, done) == [("<graph-1@example.org>", False)]
    # Gone from the folder: no news for the cursor, and a second disposal is harmless.
    cursor = listing.cursor_after({r.source_key for r in listing.refs})
    assert list((await mailbox.list_new(cursor)).refs) == []
    await mailbox.mark_done(listing.refs, disposal="seen")


async def test_delete_leaves_mail_in_deleted_items_only(
    graph_server: GraphContractServer, graph_standin: GraphStandin, open_mailbox: MailboxMaker
) -> None:
    await graph_server.deliver(mail(1))
    mailbox = open_mailbox(graph_server.account())
    await mailbox.connect()
    listing = await mailbox.list_new(None)
    await mailbox.mark_done(listing.refs, disposal="delete")
    assert await graph_server.remaining() == []
    assert graph_standin.remaining(graph_server.upn, "deleteditems") == [
        ("<graph-1@example.org>", False)
    ]
    # Deleted from Deleted Items, then gone: disposing again and fetching skip it.
    await mailbox.mark_done(listing.refs, disposal="delete")
    assert graph_standin.remaining(graph_server.upn, "deleteditems") == []
    await mailbox.mark_done(listing.refs, disposal="delete")
    assert await drain(mailbox, list(listing.refs)) == []
    assert [r.status for r in graph_standin.requests[-2:]] == [404, 404]


async def test_a_short_throttle_is_waited_out_and_others_go_on_meanwhile(
    graph_server: GraphContractServer,
    graph_standin: GraphStandin,
    oauth_issuer: OAuthIssuer,
    open_mailbox: MailboxMaker,
) -> None:
    other = GraphContractServer(graph_standin, oauth_issuer)
    await graph_server.deliver(mail(1))
    await other.deliver(mail(2))
    slow, fast = open_mailbox(graph_server.account()), open_mailbox(other.account())
    await slow.connect()
    await fast.connect()
    graph_standin.throttle(graph_server.upn, 1, retry_after=2)
    finished: list[str] = []

    async def run(name: str, mailbox: GraphMailbox) -> None:
        listing = await mailbox.list_new(None)
        await drain(mailbox, list(listing.refs))
        finished.append(name)

    await asyncio.gather(run("throttled", slow), run("other", fast))
    assert finished == ["other", "throttled"]
    statuses = [r.status for r in graph_standin.requests if r.mailbox == graph_server.upn]
    assert 429 in statuses and statuses[-1] == 200


async def test_a_long_throttle_is_a_transient_error_with_the_delay(
    graph_server: GraphContractServer, graph_standin: GraphStandin, open_mailbox: MailboxMaker
) -> None:
    mailbox = open_mailbox(graph_server.account())
    await mailbox.connect()
    graph_standin.throttle(graph_server.upn, 1, retry_after=120)
    with pytest.raises(RetryLater) as throttled:
        await mailbox.list_new(None)
    assert throttled.value.retry_after == 120
    assert graph_server.upn in str(throttled.value)


async def test_5xx_is_retried_with_backoff_then_a_transient_error(
    graph_server: GraphContractServer, graph_standin: GraphStandin, open_mailbox: MailboxMaker
) -> None:
    await graph_server.deliver(mail(1))
    mailbox = open_mailbox(graph_server.account())
    await mailbox.connect()
    graph_standin.fail(graph_server.upn, 1, status=503)
    assert len((await mailbox.list_new(None)).refs) == 1
    graph_standin.fail(graph_server.upn, 3, status=500)
    with pytest.raises(RetryLater, match="500"):
        await mailbox.list_new(None)


async def test_an_expired_token_is_renewed_and_a_refused_one_is_permanent(
    graph_server: GraphContractServer, oauth_issuer: OAuthIssuer, open_mailbox: MailboxMaker
) -> None:
    await graph_server.deliver(mail(1))
    mailbox = open_mailbox(graph_server.account())
    await mailbox.connect()
    issued = oauth_issuer.issued
    oauth_issuer.expire_tokens()
    assert len((await mailbox.list_new(None)).refs) == 1
    assert oauth_issuer.issued == issued + 1

    class Bogus:
        health = CredentialHealth()

        async def token(self) -> str:
            return "bogus-token-never-valid"

        def invalidate(self) -> None:
            pass

    refused = open_mailbox(graph_server.account(), tokens=Bogus())
    with pytest.raises(AuthFailed) as failed:
        await refused.connect()
        await refused.list_new(None)
    assert "bogus-token" not in str(failed.value)
    wrong = open_mailbox(graph_server.account(client_secret="not-" + APP_SECRET))
    with pytest.raises(AuthFailed) as denied:
        await wrong.list_new(None)
    assert APP_SECRET not in str(denied.value)


async def test_big_mail_is_streamed_and_over_the_limit_only_its_header(
    graph_server: GraphContractServer, open_mailbox: MailboxMaker
) -> None:
    big = mail(1, b"x" * 76 + b"\r\n") + (b"y" * 998 + b"\r\n") * 8_000
    await graph_server.deliver(big)
    mailbox = open_mailbox(graph_server.account())
    await mailbox.connect()
    listing = await mailbox.list_new(None)
    [whole] = await drain(mailbox, list(listing.refs))
    assert whole.data == big and whole.complete and whole.ref.size == len(big)
    [stub] = await drain(mailbox, list(listing.refs), max_size=100_000)
    assert not stub.complete
    assert stub.data == big.split(b"\r\n\r\n")[0] + b"\r\n\r\n"


async def test_wait_for_news_sees_new_mail_by_polling_the_delta(
    graph_server: GraphContractServer, open_mailbox: MailboxMaker
) -> None:
    mailbox = open_mailbox(graph_server.account())
    await mailbox.connect()
    await mailbox.list_new(None)
    assert not await mailbox.wait_for_news(0.3)
    await graph_server.deliver(mail(1))
    assert await mailbox.wait_for_news(10)
