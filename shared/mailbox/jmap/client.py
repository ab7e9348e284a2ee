"""A small async JMAP client (RFC 8620) on httpx: session discovery, method calls, blob
download (streamed) and upload, and the EventSource push channel.

Why httpx and not ``jmapc``: jmapc covers the methods (Email/changes, EmailSubmission/set,
Identity/get) but is built on ``requests``: every call would block a thread, its blob
download reads the whole body into memory, and it has no Email/import. httpx is already a
dependency, is async, and streams bodies; JMAP itself is a few JSON POSTs.

Errors become Mailroom's, naming the server and the user, never a secret:

HTTP / JMAP failure                           → Mailroom error
├── connect, timeout, dropped connection      → Transient
├── 401/403 (after one fresh token, OAuth)    → AuthFailed (sign-in refused; a Permanent)
├── 429, 5xx, "limit" request error           → Transient (Retry-After in the text)
├── other 4xx, a request-level problem        → Permanent
├── method error serverFail/Unavailable/...   → Transient
├── method error cannotCalculateChanges       → CannotCalculateChanges (the caller resyncs)
└── any other method error (accountNotFound…) → Permanent
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
from pydantic import SecretStr

from shared.auth import TokenProvider
from shared.auth.errors import AuthFailed
from shared.errors import Permanent, Transient, cert_error

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
TRANSIENT_METHOD_ERRORS = frozenset({"serverFail", "serverUnavailable", "rateLimit", "tooLarge"})

Json = dict[str, Any]
AuthHeader = Callable[[], Awaitable[str]]
"""Gives the Authorization header value (``Basic ...`` or ``Bearer <token>``)."""


def auth_header(user: str, password: SecretStr | None, tokens: TokenProvider | None) -> AuthHeader:
    """The Authorization header of a sign-in: ``Bearer`` with a token of ``tokens`` when
    given (OAuth 2.0), else ``Basic`` with ``user`` and ``password``."""
    if tokens is not None:
        provider = tokens

        async def bearer() -> str:
            return f"Bearer {await provider.token()}"

        return bearer
    secret = password.get_secret_value() if password is not None else ""
    pair = base64.b64encode(f"{user}:{secret}".encode()).decode()

    async def basic() -> str:
        return f"Basic {pair}"

    return basic


class CannotCalculateChanges(Transient):
    """The server cannot tell the changes since the stored state: resync from scratch."""


@dataclass(frozen=True)
class Session:
    """The parts of the JMAP session resource Mailroom uses (URLs made absolute)."""

    api_url: str
    download_url: str
    upload_url: str
    event_source_url: str | None
    account_id: str
    submission_account_id: str | None
    capabilities: frozenset[str]
    state: str | None = None
    """The session's ``state`` (RFC 8620 §2): every API answer's ``sessionState`` is
    compared with it to tell that the session changed."""

    @classmethod
    def parse(cls, data: Json, base: str) -> Session:
        """Read a session resource fetched from ``base``; Permanent if it lacks JMAP Mail."""
        capabilities = frozenset(data.get("capabilities", {}))
        primary = data.get("primaryAccounts", {})
        if MAIL not in capabilities or MAIL not in primary:
            raise Permanent(f"{base} offers no JMAP Mail ({MAIL}) account")
        event_source = data.get("eventSourceUrl")
        return cls(
            api_url=urljoin(base, data["apiUrl"]),
            download_url=urljoin(base, data["downloadUrl"]),
            upload_url=urljoin(base, data["uploadUrl"]),
            event_source_url=urljoin(base, event_source) if event_source else None,
            account_id=str(primary[MAIL]),
            submission_account_id=primary.get(SUBMISSION),
            capabilities=capabilities,
            state=str(data["state"]) if data.get("state") is not None else None,
        )

    def download(self, blob_id: str, name: str = "message.eml") -> str:
        """The download URL of a blob (RFC 8620 §6.2 URI template)."""
        return _expand(
            self.download_url,
            accountId=self.account_id,
            blobId=blob_id,
            name=name,
            type="application/octet-stream",
        )

    def upload(self) -> str:
        """The upload URL of the account."""
        return _expand(self.upload_url, accountId=self.account_id)

    def events(self, types: str = "Email") -> str | None:
        """The EventSource URL for changes of ``types``, without pings or auto-close."""
        if self.event_source_url is None:
            return None
        return _expand(self.event_source_url, types=types, closeafter="no", ping="0")


def _expand(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", quote(value, safe=""))
    return template


def retry_after(response: httpx.Response) -> str:
    """`` (retry after N s)`` when the server said so, else empty."""
    value = response.headers.get("Retry-After")
    return f" (retry after {value} s)" if value else ""


class JmapClient:
    """One authenticated HTTP client for one JMAP account."""

    def __init__(
        self,
        session_url: str,
        *,
        user: str,
        auth: AuthHeader,
        timeout: float,
        verify: ssl.SSLContext | bool = True,
        refresh_auth: Callable[[], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._session_url = session_url
        self._user = user
        self._auth = auth
        self._refresh_auth = refresh_auth
        self._where = urlsplit(session_url).netloc
        # ``transport``: another HTTP transport (tests answer from a function).
        self._open: Callable[[], httpx.AsyncClient] = lambda: httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            verify=verify,
            follow_redirects=True,
            transport=transport,
        )
        self._http = self._open()
        self.session: Session | None = None
        self._stale = True
        """Whether :meth:`current_session` must fetch the session again."""

    @property
    def where(self) -> str:
        """``user at host`` for error messages."""
        return f"{self._user} at {self._where}"

    async def connect(self) -> Session:
        """Fetch the session resource (again: its URLs and accounts may change); after
        :meth:`close` this opens new HTTP connections."""
        if self._http.is_closed:
            self._http = self._open()
        response = await self._send("GET", self._session_url)
        try:
            self.session = Session.parse(response.json(), str(response.url))
        except (ValueError, KeyError, TypeError) as exc:
            raise Permanent(f"JMAP session of {self.where} is not valid JSON: {exc}") from exc
        self._stale = False
        return self.session

    async def current_session(self) -> Session:
        """The session fetched before, fetched again only when it may have changed: an API
        answer's ``sessionState`` differed from its ``state`` (RFC 8620 §3.4), a token was
        refreshed, a request failed, or the client was closed. A sender asks for it at every
        mail; a GET each time would cost a round trip per mail for a session that rarely
        changes."""
        if self.session is None or self._stale or self._http.is_closed:
            return await self.connect()
        return self.session

    def need_session(self) -> Session:
        """The session fetched by :meth:`connect`."""
        if self.session is None:
            raise RuntimeError("JmapClient.connect() was not called")
        return self.session

    async def call(
        self, calls: list[list[Any]], using: tuple[str, ...] = (CORE, MAIL)
    ) -> list[Json]:
        """Run method calls in one request; return each call's arguments, in order.

        A method error raises (see the module's table); back-references between calls work
        as the server supports them (RFC 8620 §3.7)."""
        session = self.need_session()
        body = {"using": list(using), "methodCalls": calls}
        response = await self._send("POST", session.api_url, json=body)
        try:
            data = response.json()
            answers = data["methodResponses"]
        except (ValueError, KeyError, TypeError) as exc:
            raise Transient(f"JMAP server of {self.where} answered no methodResponses") from exc
        said = data.get("sessionState")
        if said is not None and str(said) != session.state:
            self._stale = True
        results: list[Json] = []
        for name, arguments, call_id in answers:
            if name == "error":
                raise method_error(arguments, call_id, self.where)
            results.append(arguments)
        return results

    async def download(self, blob_id: str) -> AsyncGenerator[bytes, None]:
        """Stream a blob's bytes."""
        url = self.need_session().download(blob_id)
        async with self._stream("GET", url) as response:
            async for chunk in response.aiter_bytes():
                yield chunk

    async def upload(self, data: bytes, content_type: str = "message/rfc822") -> str:
        """Upload ``data``; its blob id."""
        url = self.need_session().upload()
        response = await self._send(
            "POST", url, content=data, headers={"Content-Type": content_type}
        )
        try:
            return str(response.json()["blobId"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Transient(f"JMAP upload to {self.where} answered no blobId") from exc

    async def events(self, types: str = "Email") -> AsyncIterator[Json]:
        """The push channel's ``state`` events (RFC 8620 §7.3), as they come."""
        url = self.need_session().events(types)
        if url is None:
            return
        headers = {"Accept": "text/event-stream"}
        async with self._stream("GET", url, headers=headers, endless=True) as response:
            event, data = "", []
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    parsed = _json(data) if event in ("state", "") else None
                    if parsed is not None:
                        yield parsed
                    event, data = "", []

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    async def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": await self._auth(), **(extra or {})}

    async def _send(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        for attempt in (1, 2):
            try:
                response = await self._http.request(
                    method, url, headers=await self._headers(headers), **kwargs
                )
            except httpx.HTTPError as exc:
                # The server may have moved its URLs: the next mail asks for the session.
                self._stale = True
                raise self._network_error(exc) from exc
            if response.status_code in (401, 403) and attempt == 1 and self._refresh_auth:
                # An expired token: ask for a fresh one once before calling it refused; the
                # session may differ for the new token.
                self._refresh_auth()
                self._stale = True
                continue
            if response.status_code >= 400:
                self._stale = True
            self._check(response)
            return response
        raise AssertionError("unreachable")

    def _stream(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        endless: bool = False,
    ) -> _Streamed:
        return _Streamed(self, method, url, headers, endless)

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        if status in (401, 403):
            said = _problem(response) or _first_line(response)
            raise AuthFailed(
                f"JMAP server refused the sign-in of {self.where} (HTTP {status}{said})"
            )
        problem = _problem(response)
        text = f"JMAP server of {self.where} answered HTTP {status}{problem}"
        if status == 429 or status >= 500 or "jmap:error:limit" in problem:
            raise Transient(text + retry_after(response))
        raise Permanent(text)

    def _network_error(self, exc: httpx.HTTPError) -> Transient | Permanent:
        cert = cert_error(exc)
        if cert is not None:
            return Permanent(
                f"TLS certificate of {self._where} not trusted (for {self._user}): "
                f"{cert.verify_message}; set ca_file to the CA that signed it"
            )
        kind = type(exc).__name__
        return Transient(f"JMAP server of {self.where} unreachable: {kind} {exc}".strip())


class _Streamed:
    """An authenticated streamed request with the client's error mapping."""

    def __init__(
        self,
        client: JmapClient,
        method: str,
        url: str,
        headers: dict[str, str] | None,
        endless: bool,
    ) -> None:
        self._client, self._method, self._url = client, method, url
        self._headers, self._endless = headers, endless
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        client = self._client
        extensions = {}
        if self._endless:
            # A push channel is quiet until something changes: no read timeout.
            base = client._http.timeout
            extensions["timeout"] = httpx.Timeout(
                base.connect, read=None, write=base.write, pool=base.pool
            ).as_dict()
        try:
            request = client._http.build_request(
                self._method,
                self._url,
                headers=await client._headers(self._headers),
                extensions=extensions,
            )
            self._response = await client._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise client._network_error(exc) from exc
        if self._response.status_code >= 400:
            await self._response.aread()
            await self._response.aclose()
            client._check(self._response)
        return self._response

    async def __aexit__(self, *exc: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def _json(lines: list[str]) -> Json | None:
    """An event's JSON data; None when malformed (the next event or the poll catches up)."""
    try:
        value = json.loads("\n".join(lines))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _problem(response: httpx.Response) -> str:
    """``: <type> <detail>`` of an RFC 7807 problem answer, else empty."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts = [str(data[k]) for k in ("type", "detail") if data.get(k)]
    return f": {' '.join(parts)}" if parts else ""


def _first_line(response: httpx.Response) -> str:
    """``: <the first line of a short plain-text answer>``, else empty (HTML pages say
    nothing an administrator can use)."""
    kind = response.headers.get("content-type", "")
    if not kind.startswith("text/plain"):
        return ""
    line = response.text.strip().split("\n", 1)[0].strip()
    return f": {line[:200]}" if line else ""


def method_error(arguments: Json, call_id: str, where: str) -> Transient | Permanent:
    """The Mailroom error for a JMAP method-level error response."""
    kind = str(arguments.get("type", "unknown"))
    detail = arguments.get("description")
    text = f"JMAP call {call_id} for {where} failed: {kind}" + (f" ({detail})" if detail else "")
    if kind == "cannotCalculateChanges":
        return CannotCalculateChanges(text)
    if kind in TRANSIENT_METHOD_ERRORS:
        return Transient(text)
    return Permanent(text)
