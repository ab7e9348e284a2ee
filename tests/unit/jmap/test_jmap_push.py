"""Waiting for news on a JMAP server answered by a function: a push event with a new Email
state wakes the fetcher; a push channel that closes without a word (Cyrus without idled)
makes the mailbox poll the state instead, and report that it has no real push."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from shared.mailbox.jmap import mailbox as jmap_mailbox
from shared.mailbox.jmap.client import JmapClient
from shared.mailbox.jmap.mailbox import JmapMailbox
from shared.models.config import IncomingAccount

SESSION = {
    "apiUrl": "/jmap/",
    "downloadUrl": "/d/{accountId}/{blobId}/{name}?accept={type}",
    "uploadUrl": "/u/{accountId}/",
    "eventSourceUrl": "/events?types={types}&closeafter={closeafter}&ping={ping}",
    "capabilities": {"urn:ietf:params:jmap:core": {}, "urn:ietf:params:jmap:mail": {}},
    "primaryAccounts": {"urn:ietf:params:jmap:mail": "A1"},
}


class Server:
    """Answers the session, Mailbox/get, Email/get (the state) and the push channel."""

    def __init__(self, events: bytes | None) -> None:
        self.events = events
        self.states = iter(["s1", "s1", "s2"])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jmap":
            return httpx.Response(200, json=SESSION)
        if request.url.path == "/events":
            if self.events is None:
                return httpx.Response(204)
            return httpx.Response(200, content=self.events)
        (name, _, call_id), *_ = json.loads(request.content)["methodCalls"]
        answer: dict[str, Any]
        if name == "Mailbox/get":
            answer = {"list": [{"id": "mb", "role": "inbox", "totalEmails": 0}]}
        else:
            answer = {"state": next(self.states, "s2"), "list": []}
        return httpx.Response(200, json={"methodResponses": [[name, answer, call_id]]})


def mailbox(server: Server) -> JmapMailbox:
    account = IncomingAccount.model_validate(
        {
            "name": "push",
            "protocol": "JMAP",
            "host": "jmap.example.org",
            "username": "alice",
            "password": "pw",
        }
    )
    box = JmapMailbox(account, timeout=5, tokens=None)

    async def auth() -> str:
        return "Basic x"

    box._client = JmapClient(
        account.jmap_session_url,
        user="alice",
        auth=auth,
        timeout=5,
        transport=httpx.MockTransport(server),
    )
    return box


async def test_a_push_event_with_a_new_state_wakes_the_fetcher() -> None:
    event = b'event: state\r\ndata: {"changed": {"A1": {"Email": "s9"}}}\r\n\r\n'
    box = mailbox(Server(event))
    assert (await box.connect()).supports_idle
    assert await box.wait_for_news(5)
    await box.close()


async def test_a_silent_push_channel_falls_back_to_polling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jmap_mailbox, "POLL_SECONDS", 0.01)
    box = mailbox(Server(None))
    await box.connect()
    # The state moves from s1 to s2 on the second poll.
    assert await box.wait_for_news(5)
    assert not (await box.connect()).supports_idle
    await box.close()
