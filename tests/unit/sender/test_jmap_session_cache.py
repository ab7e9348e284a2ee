"""JMAP sending, answered by a function (no server): the session and the chosen identity and
Sent mailbox are asked for once per client, not at every mail, and again once an answer's
``sessionState`` says the session changed (RFC 8620 §3.4) or a submission was refused; a CA
file that cannot be read is Permanent."""

from __future__ import annotations

import json
from email.message import EmailMessage
from functools import partial

import httpx
import pytest

from services.sender.transport import SendResult
from services.sender.transports import jmap
from services.sender.transports.jmap import JmapTransport
from shared.errors import Permanent
from shared.mailbox.jmap.client import JmapClient
from tests.unit.sender.jmap_session import JMAP, JMAP_SESSION

ACCEPTED = SendResult("250 JMAP submission S1 accepted")


class Server:
    """A JMAP server whose session state is ``state``; ``asked`` lists the steps served."""

    def __init__(self) -> None:
        self.state = "s1"
        self.asked: list[str] = []
        self.refuse: str | None = None
        """A notCreated type for the next EmailSubmission/set."""

    def session(self) -> dict[str, object]:
        return {**JMAP_SESSION, "state": self.state}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/jmap":
            self.asked.append("session")
            return httpx.Response(200, json=self.session())
        if path.startswith("/jmap/upload/"):
            self.asked.append("upload")
            return httpx.Response(200, json={"blobId": "B1"})
        names = [call[0] for call in json.loads(request.content)["methodCalls"]]
        if "Identity/get" in names:
            self.asked.append("identity")
            answers: list[object] = [
                ["Mailbox/get", {"list": [{"id": "S", "role": "sent"}]}, "m"],
                ["Identity/get", {"list": [{"id": "I1", "email": "helpdesk@example.org"}]}, "i"],
            ]
        else:
            assert names == ["Email/import", "EmailSubmission/set"]
            self.asked.append("submission")
            status = {"bob@example.net": {"smtpReply": "250 2.0.0 OK", "delivered": "yes"}}
            created = {"id": "S1", "deliveryStatus": status}
            submitted: dict[str, object] = {"created": {"s": created}}
            if self.refuse is not None:
                submitted = {"notCreated": {"s": {"type": self.refuse}}}
                self.refuse = None
            answers = [
                ["Email/import", {"created": {"m": {"id": "E1"}}}, "a"],
                ["EmailSubmission/set", submitted, "b"],
            ]
        return httpx.Response(200, json={"methodResponses": answers, "sessionState": self.state})


def message() -> EmailMessage:
    made = EmailMessage()
    made["From"] = "Helpdesk <helpdesk@example.org>"
    made["To"] = "bob@example.net"
    made["Subject"] = "Re: printer [Case#10042]"
    made.set_content("We are on it.\n")
    return made


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    answer = Server()
    monkeypatch.setattr(
        jmap, "JmapClient", partial(JmapClient, transport=httpx.MockTransport(answer))
    )
    return answer


async def test_two_mails_ask_for_the_session_and_identity_once(server: Server) -> None:
    sender = JmapTransport()
    try:
        assert await sender.send(message(), JMAP) == ACCEPTED
        assert await sender.send(message(), JMAP) == ACCEPTED
    finally:
        await sender.close()
    assert server.asked == ["session", "identity", "upload", "submission", "upload", "submission"]


async def test_a_changed_session_state_fetches_session_and_identity_again(
    server: Server,
) -> None:
    sender = JmapTransport()
    try:
        await sender.send(message(), JMAP)
        server.state = "s2"  # the first mail's answers still said s1
        await sender.send(message(), JMAP)  # its answer says s2: the session changed
        await sender.send(message(), JMAP)
        await sender.send(message(), JMAP)
    finally:
        await sender.close()
    once = ["upload", "submission"]
    fresh = ["session", "identity", *once]
    assert server.asked == [*fresh, *once, *fresh, *once]


async def test_a_refused_submission_forgets_the_identity(server: Server) -> None:
    sender = JmapTransport()
    try:
        await sender.send(message(), JMAP)
        server.refuse = "forbiddenFrom"
        with pytest.raises(Permanent, match="forbiddenFrom"):
            await sender.send(message(), JMAP)
        await sender.send(message(), JMAP)
    finally:
        await sender.close()
    once = ["upload", "submission"]
    assert server.asked == ["session", "identity", *once, *once, "identity", *once]


async def test_a_missing_ca_file_is_permanent(server: Server) -> None:
    conn = JMAP.model_copy(update={"ca_file": "/nonexistent/ca.pem"})
    sender = JmapTransport()
    try:
        with pytest.raises(Permanent, match=r"CA file '/nonexistent/ca\.pem' of the JMAP server"):
            await sender.send(message(), conn)
    finally:
        await sender.close()
    assert server.asked == []
