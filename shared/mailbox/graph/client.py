"""One mailbox's HTTPS session with Microsoft Graph: bearer tokens, throttling and errors.

httpx, not Microsoft's ``msgraph-sdk``: Mailroom needs eight endpoints, raw MIME both ways
and the throttling answers themselves (status, ``Retry-After``) to map them per mailbox;
the SDK brings Kiota's generated models for all of Graph (tens of MB), its own retry
middleware that sleeps inside a call for as long as the server says, and azure-identity
beside the msal Mailroom already uses. httpx is async, streams bodies, and is already in use.

Each :class:`GraphClient` belongs to one mailbox (or one sending connection) and has its own
connection pool and backoff state: a throttled mailbox waits alone, nothing is shared.

answer                                   → Mailroom error
├── 401 (token refused)                  → token dropped, asked anew once; then AuthFailed
├── 403 (no permission, access policy)   → Permanent
├── 404 (mailbox, folder or mail gone)   → Gone (a Permanent)
├── 429, 503 with Retry-After ≤ 10 s     → waited out here, at most 3 tries
├── 429, 5xx beyond that                 → RetryLater (a Transient) carrying the delay
├── other 4xx                            → Refused (a Permanent) with Graph's error code
└── timeout, connection refused/dropped  → Transient
Texts name the host and the mailbox, never a token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from shared.auth import AuthFailed, TokenProvider
from shared.errors import MailroomError, Permanent, Transient, cert_error
from shared.mailbox._tls import tls_context

log = logging.getLogger(__name__)
ATTEMPTS = 3
"""Tries of one request while the server asks for short waits (429, 5xx)."""
MAX_INLINE_WAIT_S = 10.0
"""A Retry-After up to this long is waited out in the request; a longer one is the fetcher's
backoff (a RetryLater), so an account never holds a task asleep for minutes."""
BACKOFF_S = 0.5
"""First wait after a 5xx without Retry-After; doubled each try."""


class RetryLater(Transient):
    """Graph throttled the mailbox (429) or failed (5xx); ``retry_after`` is how long to wait
    before asking again (Graph's Retry-After, else the backoff)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Gone(Permanent):
    """404: the mailbox, folder or message does not exist (or no longer)."""


class Refused(Permanent):
    """Another 4xx; ``code`` is Graph's error code (``ErrorInvalidRecipients``, ...)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return float(BACKOFF_S * 2.0**attempt)


def _error(response: httpx.Response) -> tuple[str, str]:
    """Graph's error code and message (``/graph/errors``)."""
    try:
        error = response.json().get("error", {})
        return str(error.get("code", "")), str(error.get("message", ""))
    except (ValueError, AttributeError):
        return "", response.reason_phrase


class GraphClient:
    """Requests to ``base_url`` (Graph's v1.0 URL) for ``mailbox`` with tokens of ``tokens``."""

    def __init__(
        self,
        base_url: str,
        mailbox: str,
        *,
        tokens: TokenProvider,
        timeout: float,
        verify_tls: bool = True,
        ca_file: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.mailbox = mailbox
        self.where = f"Microsoft Graph {urlsplit(base_url).netloc} mailbox {mailbox}"
        self.not_before = 0.0
        """Monotonic time before which the server asked not to be asked again."""
        self._tokens = tokens
        self._timeout = timeout
        self._verify_tls = verify_tls
        self._ca_file = ca_file
        self._transport = transport
        """Another HTTP transport than the network (tests answer from a function)."""
        self._http: httpx.AsyncClient | None = None

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` below this mailbox (``/users/{mailbox}``)."""
        return f"{self.base_url}/users/{quote(self.mailbox, safe='@')}{path}"

    async def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # Reading a CA file is blocking file I/O.
            verify = await asyncio.to_thread(
                tls_context, self._verify_tls, self._ca_file, where=self.where
            )
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                verify=verify,
                # One mailbox needs few connections; keep them for the next round.
                limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
                transport=self._transport,
            )
        return self._http

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request (read in full), throttling waited out or raised; see the module."""
        async with self.stream(method, url, **kwargs) as response:
            await response.aread()
            return response

    @asynccontextmanager
    async def stream(self, method: str, url: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        """One request whose body is read by the caller (a 2xx answer)."""
        client = await self._client()
        refused_once = False
        attempt = 0
        while True:
            headers = dict(kwargs.pop("headers", None) or {})
            kwargs["headers"] = headers
            headers["Authorization"] = f"Bearer {await self._tokens.token()}"
            request = client.build_request(method, url, **kwargs)
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from None
            try:
                if response.is_success:
                    self.not_before = 0.0
                    yield response
                    return
                await response.aread()
                if response.status_code == 401 and not refused_once:
                    # Revoked or expired early: one new token, then the refusal stands.
                    self._tokens.invalidate()
                    refused_once = True
                    continue
                wait = self._wait(response, attempt)
            finally:
                await response.aclose()
            attempt += 1
            log.info("%s: %s, asking again in %.1f s", self.where, response.status_code, wait)
            await asyncio.sleep(wait)

    def _wait(self, response: httpx.Response, attempt: int) -> float:
        """How long to wait before trying again, or the error to raise."""
        status = response.status_code
        code, message = _error(response)
        text = f"{self.where}: {method_path(response)} answered {status} {code}: {message}"
        if status == 429 or status >= 500:
            delay = _retry_after(response, attempt)
            if delay <= MAX_INLINE_WAIT_S and attempt + 1 < ATTEMPTS:
                return delay
            self.not_before = time.monotonic() + delay
            raise RetryLater(f"{text}; retry after {delay:g} s", retry_after=delay)
        if status == 401:
            raise AuthFailed(f"{text} (the OAuth 2.0 token was refused)")
        if status == 403:
            raise Permanent(
                f"{text} (the app lacks the permission, or an application access policy "
                "excludes this mailbox)"
            )
        if status == 404:
            raise Gone(text)
        raise Refused(text, code=code)

    def _transport_error(self, exc: httpx.HTTPError) -> MailroomError:
        cert = cert_error(exc)
        if cert is not None:
            return Permanent(
                f"{self.where}: TLS certificate not trusted: {cert.verify_message}; "
                "set ca_file to the CA that signed it"
            )
        if isinstance(exc, httpx.TimeoutException):
            return Transient(f"{self.where} timed out: {type(exc).__name__}")
        return Transient(f"{self.where} unreachable: {type(exc).__name__}: {exc}")

    async def close(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def method_path(response: httpx.Response) -> str:
    """``METHOD /path`` of the request behind ``response`` (no query: it may hold tokens of
    Graph's own, the delta and skip tokens, which are no secrets but long)."""
    return f"{response.request.method} {response.request.url.path}"
