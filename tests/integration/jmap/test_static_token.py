"""A JMAP account signing in with a static API token (a ``static`` credential), as Fastmail
and Stalwart want it, fetching from and sending through the real local Cyrus.

Cyrus here takes only Basic auth, so the bearer path is proven through
``tests.integration.jmap.bearer_gate``: a local door that refuses any request not carrying
``Authorization: Bearer <the token>`` and forwards the others to Cyrus with Basic auth. The
adapter speaks bearer to the gate; the real Cyrus answers. The credential lives in the real
store (sealed), and a refusal marks it failing with the server's own text until a new token
is set."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from deploy.local.cyrus import Cyrus
from services.config.credentials import add_credential, change_credential, show_credential
from services.fetcher.deps import FetcherDeps
from services.fetcher.health import record_round
from services.sender.tokens import TokenProviders
from services.sender.transports.jmap import JmapTransport
from shared.auth import AuthFailed
from shared.credential_health import check_credentials
from shared.mailbox import open_mailbox
from shared.models.config import IncomingAccount, OutgoingConnection
from shared.runtime import Runtime
from tests.integration.jmap.bearer_gate import BearerGate, bearer_gate
from tests.integration.jmap.helpers import fresh_user, mail
from tests.integration.jmap.relay import Relay
from tests.integration.jmap.test_jmap_send import answer
from tests.secret_scan import SCAN
from tests.support import server_settings

pytestmark = pytest.mark.integration

TOKEN = SCAN.secret("a static API token", "fmu1-0f1e2d3c-static-api-token-a")
NEW_TOKEN = SCAN.secret("a static API token", "fmu1-9a8b7c6d-static-api-token-b")


@pytest.fixture
async def rt(mongo_url: str, mongo_db_name: str) -> AsyncIterator[Runtime]:
    """A Runtime on this test's database (the store only: no alert is mailed here)."""
    settings = server_settings(
        rabbit_url="amqp://127.0.0.1:1/unused",
        mongo_url=mongo_url,
        database=mongo_db_name,
        instance="jmap-static-test",
    )
    runtime = Runtime(settings)
    await runtime.start_store()
    yield runtime
    await runtime.close()


@pytest.fixture
def user(cyrus: Cyrus) -> tuple[str, str]:
    return fresh_user(cyrus)


@pytest.fixture
def gate(cyrus: Cyrus, user: tuple[str, str]) -> Iterator[BearerGate]:
    with bearer_gate(cyrus, user[0], TOKEN) as door:
        yield door


def account(gate: BearerGate, credential: str = "fastmail") -> IncomingAccount:
    return IncomingAccount.model_validate(
        {
            "name": f"jmap-{gate.user}",
            "protocol": "JMAP",
            "host": "127.0.0.1",
            "jmap_url": gate.session_url,
            "username": gate.user,
            "auth": "oauth2",
            "credential": credential,
        }
    )


async def add_static(rt: Runtime, token: str) -> None:
    fields = {"name": "fastmail", "provider": "static", "token": token}
    await add_credential(rt, fields=fields, who="test")


async def test_an_account_fetches_with_its_api_token_as_the_bearer(
    cyrus: Cyrus, rt: Runtime, gate: BearerGate
) -> None:
    await add_static(rt, TOKEN)
    for n in (1, 2):
        cyrus.deliver(gate.user, mail(n))
    mailbox = open_mailbox(account(gate), timeout=30, credentials=rt.credentials)
    try:
        await mailbox.connect()
        listing = await mailbox.list_new(None)
        got = [m.data async for m in mailbox.fetch(listing.refs)]
        await record_round(FetcherDeps.of(rt), account(gate).name, mailbox, None, 0)
    finally:
        await mailbox.close()
    assert sorted(b"<m1@test>" in d for d in got) == [False, True]
    assert any(b"<m2@test>" in d for d in got)
    # Every request carried the token as it is, and only that.
    assert len(gate.seen) >= 4 and set(gate.seen) == {f"Bearer {TOKEN}"}
    shown = await show_credential(rt, name="fastmail")
    assert shown.credential["token_set"] is True and "token" not in shown.credential
    assert shown.state.consent == "not_needed" and shown.state.last_login_at is not None
    assert shown.state.token_expires_at is None
    assert shown.used_by == []  # the account is not in the stored configuration here
    (report,) = await check_credentials(rt, alert=False)
    assert report.status == "ok" and report.provider == "static"


async def test_a_refused_token_marks_the_credential_failing_until_a_new_one_is_set(
    rt: Runtime, gate: BearerGate
) -> None:
    gate.token = NEW_TOKEN  # the administrator revoked the old token at the server
    await add_static(rt, TOKEN)
    mailbox = open_mailbox(account(gate), timeout=30, credentials=rt.credentials)
    try:
        with pytest.raises(AuthFailed) as refused:
            await mailbox.connect()
        text = str(refused.value)
        assert "HTTP 401: invalid API token" in text and gate.user in text
        assert TOKEN not in text
        # Asked once more after invalidating, as for an OAuth token, then given up.
        assert gate.seen == [f"Bearer {TOKEN}"] * 2
        await record_round(FetcherDeps.of(rt), account(gate).name, mailbox, refused.value, 1)
        state = (await show_credential(rt, name="fastmail")).state
        assert state.consent == "failing" and state.last_error == text
        (report,) = await check_credentials(rt, alert=False)
        assert report.status == "failing" and "invalid API token" in report.conditions[0].text

        await change_credential(rt, name="fastmail", fields={"token": NEW_TOKEN}, who="test")
        assert (await show_credential(rt, name="fastmail")).state.consent == "not_needed"
        await mailbox.connect()  # the token is read from the store again
        await record_round(FetcherDeps.of(rt), account(gate).name, mailbox, None, 0)
    finally:
        await mailbox.close()
    assert gate.seen[-1] == f"Bearer {NEW_TOKEN}"
    (report,) = await check_credentials(rt, alert=False)
    assert report.status == "ok", report


async def test_sending_signs_in_with_the_api_token(
    rt: Runtime, relay: Relay, gate: BearerGate
) -> None:
    await add_static(rt, TOKEN)
    connection = OutgoingConnection.model_validate(
        {
            "protocol": "jmap",
            "host": "127.0.0.1",
            "jmap_url": gate.session_url,
            "username": gate.user,
            "auth": "oauth2",
            "credential": "fastmail",
        }
    )
    transport = JmapTransport(TokenProviders(credentials=lambda: rt.credentials))
    try:
        reply = await transport.send(answer(7, "bob@example.net"), connection)
        assert reply.reply is not None and reply.refused == {}
        gate.token = NEW_TOKEN  # revoked at the server
        with pytest.raises(AuthFailed, match="invalid API token"):
            await transport.send(answer(8, "bob@example.net"), connection)
    finally:
        await transport.close()
    assert any(b"<answer7@mailroom.test>" in m.data for m in relay.mails)
    assert set(gate.seen) == {f"Bearer {TOKEN}"}
    state = (await show_credential(rt, name="fastmail")).state
    assert state.consent == "failing" and state.last_login_at is not None
