"""The JMAP client's HTTP edge, answered by a function (no server): throttling and server
errors are transient with Retry-After, a refused sign-in is permanent after one fresh token,
no secret is ever in an error, and push events are read from the EventSource stream."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from shared.auth.oauth import CredentialHealth
from shared.errors import Permanent, Transient
from shared.mailbox.jmap.client import JmapClient, auth_header

SESSION = {
    "apiUrl": "/jmap/",
    "downloadUrl": "/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
    "uploadUrl": "/jmap/upload/{accountId}/",
    "eventSourceUrl": "/jmap/events?types={types}&closeafter={closeafter}&ping={ping}",
    "capabilities": {"urn:ietf:params:jmap:core": {}, "urn:ietf:params:jmap:mail": {}},
    "primaryAccounts": {"urn:ietf:params:jmap:mail": "A1"},
}
SECRET = "Sup3r-Secret-Token"


def client(
    answer: Callable[[httpx.Request], httpx.Response], refresh: Callable[[], None] | None = None
) -> JmapClient:
    async def auth() -> str:
        return f"Bearer {SECRET}"

    return JmapClient(
        "https://jmap.example.org/.well-known/jmap",
        user="alice",
        auth=auth,
        timeout=5,
        refresh_auth=refresh,
        transport=httpx.MockTransport(answer),
    )


def session_then(api: Callable[[httpx.Request], httpx.Response]) -> Callable[..., httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jmap":
            return httpx.Response(200, json=SESSION)
        return api(request)

    return answer


async def test_throttling_is_transient_with_retry_after_and_no_secret() -> None:
    jmap = client(session_then(lambda r: httpx.Response(429, headers={"Retry-After": "7"})))
    await jmap.connect()
    with pytest.raises(Transient) as throttled:
        await jmap.call([["Email/get", {"ids": []}, "0"]])
    text = str(throttled.value)
    assert "retry after 7 s" in text and "alice at jmap.example.org" in text
    assert SECRET not in text
    await jmap.close()


async def test_server_errors_and_limits_are_transient_bad_requests_permanent() -> None:
    problem = {"type": "urn:ietf:params:jmap:error:limit", "detail": "too many calls"}
    for status, body, kind in (
        (503, None, Transient),
        (400, problem, Transient),
        (400, {"type": "urn:ietf:params:jmap:error:notRequest"}, Permanent),
    ):

        def answer(request: httpx.Request, s: int = status, b: object = body) -> httpx.Response:
            return httpx.Response(s, json=b)

        jmap = client(session_then(answer))
        await jmap.connect()
        with pytest.raises(kind):
            await jmap.call([["Email/get", {"ids": []}, "0"]])
        await jmap.close()


async def test_a_refused_token_is_renewed_once_then_permanent() -> None:
    renewed: list[bool] = []
    jmap = client(lambda r: httpx.Response(401), refresh=lambda: renewed.append(True))
    with pytest.raises(Permanent, match="refused the sign-in of alice") as refused:
        await jmap.connect()
    assert renewed == [True]
    assert SECRET not in str(refused.value)
    await jmap.close()


async def test_a_dropped_connection_is_transient() -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    jmap = client(drop)
    with pytest.raises(Transient, match="unreachable"):
        await jmap.connect()
    await jmap.close()


async def test_an_untrusted_certificate_is_permanent_with_the_reason() -> None:
    def untrusted(request: httpx.Request) -> httpx.Response:
        cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
        cause.verify_message = "self-signed certificate"
        # httpx keeps the ssl error as the cause; its own text need not name it.
        raise httpx.ConnectError("handshake failed", request=request) from cause

    jmap = client(untrusted)
    with pytest.raises(Permanent, match=r"not trusted .*: self-signed certificate; set ca_file"):
        await jmap.connect()
    await jmap.close()


async def test_push_events_are_read_from_the_stream() -> None:
    stream = (
        b": comment\r\n\r\n"
        b'event: ping\r\ndata: {"interval": 5}\r\n\r\n'
        b'event: state\r\ndata: {"changed": {"A1": {"Email": "s2"}}}\r\n\r\n'
        b"event: state\r\ndata: not json\r\n\r\n"
    )

    def events(request: httpx.Request) -> httpx.Response:
        assert request.url.params["types"] == "Email"
        assert request.headers["Authorization"] == f"Bearer {SECRET}"
        return httpx.Response(200, content=stream, headers={"Content-Type": "text/event-stream"})

    jmap = client(session_then(events))
    await jmap.connect()
    got = [event async for event in jmap.events("Email")]
    assert got == [{"changed": {"A1": {"Email": "s2"}}}]
    await jmap.close()


async def test_blob_download_streams_the_bytes() -> None:
    raw = b"Subject: x\r\n\r\n" + b"y" * 100_000

    def blob(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/jmap/download/A1/G1/message.eml"
        return httpx.Response(200, content=raw)

    jmap = client(session_then(blob))
    await jmap.connect()
    assert b"".join([chunk async for chunk in jmap.download("G1")]) == raw
    await jmap.close()


class _Tokens:
    """A token provider that hands out one fixed token."""

    health = CredentialHealth()

    async def token(self) -> str:
        return SECRET

    def invalidate(self) -> None:
        pass


async def test_auth_header_is_bearer_with_a_token_provider_else_basic() -> None:
    assert await auth_header("alice", SecretStr("pw"), _Tokens())() == f"Bearer {SECRET}"
    # base64 of "alice:pw"
    assert await auth_header("alice", SecretStr("pw"), None)() == "Basic YWxpY2U6cHc="
    assert await auth_header("alice", None, None)() == "Basic YWxpY2U6"
