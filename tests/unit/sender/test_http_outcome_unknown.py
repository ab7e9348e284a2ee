"""Graph and JMAP sending, answered by a function (no server): a connection lost or timed out
once the request that submits the mail has left (Graph's ``sendMail``, JMAP's request with
``EmailSubmission/set``) is ``OutcomeUnknown``, so the sender checks the mail instead of
sending it twice; a failure before that request (no token, no connection, an earlier JMAP
request) or an HTTP answer stays Transient or Permanent, as nothing was submitted."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.message import EmailMessage
from functools import partial

import httpx
import pytest

from services.sender.tokens import TokenProviders
from services.sender.transport import OutcomeUnknown, SendResult
from services.sender.transports import graph, jmap
from services.sender.transports.graph import GraphTransport
from services.sender.transports.inflight import in_flight
from services.sender.transports.jmap import JmapTransport
from shared.auth import TokenProvider
from shared.auth.oauth import CredentialHealth
from shared.errors import Permanent, Transient
from shared.mailbox.graph.client import GraphClient
from shared.mailbox.jmap.client import JmapClient
from shared.models.config import OutgoingConnection
from tests.unit.sender.jmap_session import JMAP, JMAP_SESSION

Answer = Callable[[httpx.Request], httpx.Response]

IN_FLIGHT: list[type[httpx.TransportError]] = [
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
    httpx.WriteError,
    httpx.WriteTimeout,
]
NOT_SENT: list[type[httpx.TransportError]] = [
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
]


def failing(error: type[httpx.TransportError]) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        raise error("cut", request=request)

    return answer


def message() -> EmailMessage:
    made = EmailMessage()
    made["From"] = "Helpdesk <helpdesk@example.org>"
    made["To"] = "bob@example.net"
    made["Subject"] = "Re: printer [Case#10042]"
    made["Message-ID"] = "<answer-1@mailroom.example>"
    made.set_content("We are on it.\n")
    return made


class Claims:
    """Counts the sender's claims (``starting``)."""

    def __init__(self) -> None:
        self.made = 0

    async def __call__(self) -> None:
        self.made += 1


# Graph


class FakeToken:
    """A token provider that never asks an issuer; ``error`` fails the token fetch."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    async def token(self) -> str:
        if self.error is not None:
            raise self.error
        return "token"

    def invalidate(self) -> None:
        """Nothing cached."""

    @property
    def health(self) -> CredentialHealth:
        return CredentialHealth()


class FakeTokens(TokenProviders):
    def __init__(self, provider: TokenProvider) -> None:
        super().__init__()
        self._fake = provider

    def provider(self, conn: OutgoingConnection, *, scope: str | None = None) -> TokenProvider:
        return self._fake


GRAPH = OutgoingConnection.model_validate(
    {
        "protocol": "graph",
        "graph_url": "https://graph.example.org/v1.0",
        "username": "helpdesk@example.org",
        "auth": "oauth2",
        "client_id": "app",
        "client_secret": "secret",
        "authority": "https://login.example.org/tenant",
    }
)


async def graph_send(
    monkeypatch: pytest.MonkeyPatch, answer: Answer, token: FakeToken | None = None
) -> Claims:
    """Send through Graph answered by ``answer``; the claims made (raises what send raises)."""
    monkeypatch.setattr(
        graph, "GraphClient", partial(GraphClient, transport=httpx.MockTransport(answer))
    )
    sender = GraphTransport(FakeTokens(token or FakeToken()))
    claims = Claims()
    try:
        await sender.send(message(), GRAPH, starting=claims)
    finally:
        await sender.close()
    return claims


@pytest.mark.parametrize("error", IN_FLIGHT)
async def test_graph_a_loss_after_sendmail_left_is_outcome_unknown(
    monkeypatch: pytest.MonkeyPatch, error: type[httpx.TransportError]
) -> None:
    with pytest.raises(OutcomeUnknown, match="after the sendMail request was sent"):
        await graph_send(monkeypatch, failing(error))


@pytest.mark.parametrize("error", NOT_SENT)
async def test_graph_no_connection_for_sendmail_is_transient(
    monkeypatch: pytest.MonkeyPatch, error: type[httpx.TransportError]
) -> None:
    with pytest.raises(Transient) as raised:
        await graph_send(monkeypatch, failing(error))
    assert type(raised.value) is Transient


async def test_graph_a_failed_token_fetch_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent without a token")

    token = FakeToken(Transient("https://login.example.org unreachable: ReadTimeout"))
    with pytest.raises(Transient) as raised:
        await graph_send(monkeypatch, never, token)
    assert type(raised.value) is Transient


async def test_graph_answers_stay_transient_or_permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    throttled = httpx.Response(429, headers={"Retry-After": "60"}, json={"error": {}})
    with pytest.raises(Transient) as raised:
        await graph_send(monkeypatch, lambda r: throttled)
    assert not isinstance(raised.value, OutcomeUnknown)
    forbidden = httpx.Response(403, json={"error": {"code": "ErrorAccessDenied"}})
    with pytest.raises(Permanent):
        await graph_send(monkeypatch, lambda r: forbidden)


async def test_graph_a_loss_after_a_throttled_try_is_outcome_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tries: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        tries.append(request.url.path)
        if len(tries) == 1:
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"error": {}})
        raise httpx.ReadTimeout("cut", request=request)

    with pytest.raises(OutcomeUnknown):
        await graph_send(monkeypatch, answer)
    assert tries == ["/v1.0/users/helpdesk@example.org/sendMail"] * 2


async def test_graph_accepted_sendmail_after_one_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    claims = await graph_send(
        monkeypatch, lambda r: httpx.Response(202, headers={"request-id": "r-1"})
    )
    assert claims.made == 1


# JMAP

STEPS = ("session", "identity", "upload", "submission")
STATUS = {"bob@example.net": {"smtpReply": "250 2.0.0 OK", "delivered": "yes"}}


def jmap_server(
    fail: str | None, error: type[httpx.TransportError], *, status_later: bool = False
) -> tuple[Answer, list[str]]:
    """A JMAP server whose step ``fail`` raises ``error``; the steps it was asked for.
    ``status_later``: the created submission has no deliveryStatus, EmailSubmission/get
    (step ``status``) gives it, as Cyrus does."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body: object
        if path == "/.well-known/jmap":
            step, body = "session", JMAP_SESSION
        elif path.startswith("/jmap/upload/"):
            step, body = "upload", {"blobId": "B1"}
        else:
            names = [call[0] for call in json.loads(request.content)["methodCalls"]]
            if "Identity/get" in names:
                step = "identity"
                body = {
                    "methodResponses": [
                        ["Mailbox/get", {"list": [{"id": "S", "role": "sent"}]}, "m"],
                        [
                            "Identity/get",
                            {"list": [{"id": "I1", "email": "helpdesk@example.org"}]},
                            "i",
                        ],
                    ]
                }
            elif names == ["EmailSubmission/get"]:
                step = "status"
                got = {"list": [{"id": "S1", "deliveryStatus": STATUS}]}
                body = {"methodResponses": [["EmailSubmission/get", got, "g"]]}
            else:
                assert names == ["Email/import", "EmailSubmission/set"]
                step = "submission"
                created = {"id": "S1"} if status_later else {"id": "S1", "deliveryStatus": STATUS}
                body = {
                    "methodResponses": [
                        ["Email/import", {"created": {"m": {"id": "E1"}}}, "a"],
                        ["EmailSubmission/set", {"created": {"s": created}}, "b"],
                    ]
                }
        asked.append(step)
        if step == fail:
            raise error("cut", request=request)
        return httpx.Response(200, json=body)

    return answer, asked


async def jmap_send(monkeypatch: pytest.MonkeyPatch, answer: Answer) -> tuple[SendResult, Claims]:
    """Send through JMAP answered by ``answer``; the result and the claims made (raises what
    send raises)."""
    monkeypatch.setattr(
        jmap, "JmapClient", partial(JmapClient, transport=httpx.MockTransport(answer))
    )
    sender = JmapTransport()
    claims = Claims()
    try:
        result = await sender.send(message(), JMAP, starting=claims)
    finally:
        await sender.close()
    return result, claims


@pytest.mark.parametrize("error", IN_FLIGHT)
async def test_jmap_a_loss_after_the_submission_left_is_outcome_unknown(
    monkeypatch: pytest.MonkeyPatch, error: type[httpx.TransportError]
) -> None:
    answer, asked = jmap_server("submission", error)
    with pytest.raises(OutcomeUnknown, match="after the request with EmailSubmission/set"):
        await jmap_send(monkeypatch, answer)
    assert asked == list(STEPS)


@pytest.mark.parametrize("error", NOT_SENT)
async def test_jmap_no_connection_for_the_submission_is_transient(
    monkeypatch: pytest.MonkeyPatch, error: type[httpx.TransportError]
) -> None:
    answer, _ = jmap_server("submission", error)
    with pytest.raises(Transient) as raised:
        await jmap_send(monkeypatch, answer)
    assert type(raised.value) is Transient


@pytest.mark.parametrize("step", STEPS[:-1])
@pytest.mark.parametrize("error", IN_FLIGHT + NOT_SENT)
async def test_jmap_a_loss_before_the_submission_is_transient(
    monkeypatch: pytest.MonkeyPatch, step: str, error: type[httpx.TransportError]
) -> None:
    answer, asked = jmap_server(step, error)
    with pytest.raises(Transient) as raised:
        await jmap_send(monkeypatch, answer)
    assert type(raised.value) is Transient
    assert asked[-1] == step and "submission" not in asked


async def test_jmap_a_server_error_on_the_submission_stays_transient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer, _ = jmap_server(None, httpx.ReadError)

    def unavailable(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/jmap/" and b"EmailSubmission/set" in request.content:
            return httpx.Response(503)
        return answer(request)

    with pytest.raises(Transient) as raised:
        await jmap_send(monkeypatch, unavailable)
    assert type(raised.value) is Transient


async def test_jmap_submission_answered_after_one_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    answer, asked = jmap_server(None, httpx.ReadError)
    result, claims = await jmap_send(monkeypatch, answer)
    assert claims.made == 1 and asked == list(STEPS)
    assert result == SendResult("250 JMAP submission S1 accepted")


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectError])
async def test_jmap_a_failed_status_question_after_the_submission_counts_as_accepted(
    monkeypatch: pytest.MonkeyPatch, error: type[httpx.TransportError]
) -> None:
    answer, asked = jmap_server("status", error, status_later=True)
    result, _ = await jmap_send(monkeypatch, answer)
    assert asked == [*STEPS, "status"]
    assert result == SendResult("250 JMAP submission S1 accepted")


# The test itself


def test_only_a_failure_to_connect_proves_nothing_was_sent() -> None:
    request = httpx.Request("POST", "https://graph.example.org/")
    for error in IN_FLIGHT:
        try:
            raise Transient("lost") from error("cut", request=request)
        except Transient as exc:
            assert in_flight(exc), error
    for error in NOT_SENT:
        try:
            raise Transient("lost") from error("cut", request=request)
        except Transient as exc:
            assert not in_flight(exc), error
    assert not in_flight(Transient("answered 503"))
