"""OAuth 2.0 access tokens for mail servers (IMAP, POP3, SMTP) through msal's client-credentials
flow, as Microsoft 365 / Entra ID wants it for app-only mailbox access.

msal is blocking, so it runs in ``asyncio.to_thread``. A provider keeps the last token and
asks msal again only when it is within ``REFRESH_MARGIN_SECONDS`` of expiry (or half its
lifetime for short-lived tokens), so a token never expires in the middle of a login. msal
keeps its own cache as well; ``invalidate()`` (after a server refused a token) drops both.

A provider also keeps the credential's health: when the last token came, when it expires,
and the last error, so that an expired secret shows up before anyone misses mail.

failure                                          → Mailroom error
├── issuer refuses the client (invalid_client, unauthorized_client, invalid_scope,
│   invalid_request, invalid_grant)              → AuthFailed (a Permanent)
├── authority not usable                         → Permanent
└── issuer unreachable, timeout, 5xx, temporarily_unavailable → Transient

Texts never hold the client secret or a token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import msal
import requests

from shared.auth.errors import AuthFailed
from shared.errors import MailroomError, Permanent, Transient

REFRESH_MARGIN_SECONDS = 300.0
"""Ask for a new token this long before the current one expires."""
PERMANENT_ERRORS = frozenset(
    {"invalid_client", "unauthorized_client", "invalid_scope", "invalid_request", "invalid_grant"}
)


@dataclass(frozen=True)
class OAuthCredentials:
    """An app registration: client id and secret at an authority, for one scope.

    ``authority`` is e.g. ``https://login.microsoftonline.com/<tenant>``; ``scope`` e.g.
    ``https://outlook.office365.com/.default``. ``ca_file`` trusts a private issuer's CA.
    """

    client_id: str
    client_secret: str = field(repr=False)
    authority: str
    scope: str
    ca_file: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class CredentialHealth:
    """What is known about a credential; all None until the first attempt."""

    last_token_at: datetime | None = None
    expires_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    @property
    def ok(self) -> bool:
        """True when the last attempt got a token."""
        return self.last_token_at is not None and (
            self.last_error_at is None or self.last_error_at < self.last_token_at
        )


class TokenProvider(Protocol):
    """Gives a valid access token; fakes implement it too."""

    async def token(self) -> str:
        """A token valid for at least the refresh margin; raises Transient or Permanent."""
        ...

    def invalidate(self) -> None:
        """Forget the current token (the server refused it); the next call asks anew."""
        ...

    @property
    def health(self) -> CredentialHealth:
        """The credential's health."""
        ...


def xoauth2(user: str, token: str) -> bytes:
    """The SASL XOAUTH2 initial response (before base64) for ``user`` with ``token``."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


class _CaSession(requests.Session):
    """A session that trusts exactly ``ca_file``. ``Session.verify`` alone is not enough:
    requests lets REQUESTS_CA_BUNDLE from the environment override it."""

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        self._ca_file = ca_file

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        settings: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
        settings["verify"] = self._ca_file
        return settings


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class TokenCache:
    """A provider's token, kept until near its expiry, and the credential's health."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._margin = REFRESH_MARGIN_SECONDS
        self.health = CredentialHealth()

    def fresh(self) -> str | None:
        """The token while it is not near its expiry, else None."""
        if self._token is not None and self._clock() < self._expires - self._margin:
            return self._token
        return None

    def keep(self, token: str, lifetime: float) -> tuple[datetime, datetime]:
        """Keep a new token valid ``lifetime`` seconds; when it came and when it expires."""
        now = self._clock()
        self._token, self._expires = token, now + lifetime
        # A short-lived token is renewed after half its life rather than at every call.
        self._margin = min(REFRESH_MARGIN_SECONDS, lifetime / 2)
        came, expires = _utc(now), _utc(self._expires)
        self.health = replace(self.health, last_token_at=came, expires_at=expires)
        return came, expires

    def failed(self, error: str) -> datetime:
        """Record a refused or failed request for a token; when it happened."""
        at = _utc(self._clock())
        self.health = replace(self.health, last_error=error, last_error_at=at)
        return at

    def forget(self) -> None:
        """Drop the token (a server refused it): the next call asks anew."""
        self._token = None


class MsalTokenProvider:
    """Client-credentials tokens from msal (implements :class:`TokenProvider`)."""

    def __init__(
        self, credentials: OAuthCredentials, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._credentials = credentials
        self._app: Any = None  # msal.ConfidentialClientApplication, built in the thread
        self._cache = TokenCache(clock)
        self._lock = asyncio.Lock()

    @property
    def health(self) -> CredentialHealth:
        """The credential's health."""
        return self._cache.health

    def invalidate(self) -> None:
        """Drop the cached token and msal's cache with it."""
        self._cache.forget()
        self._app = None

    async def token(self) -> str:
        """The cached token, or a new one when it is near expiry."""
        async with self._lock:
            if (token := self._cache.fresh()) is not None:
                return token
            try:
                result = await asyncio.to_thread(self._acquire)
            except MailroomError as exc:
                self._cache.failed(str(exc))
                raise
            token = str(result["access_token"])
            self._cache.keep(token, float(result.get("expires_in") or 3600))
            return token

    def _acquire(self) -> dict[str, Any]:
        """One msal call (in a worker thread); its outcome translated."""
        creds = self._credentials
        where = f"OAuth 2.0 authority {creds.authority}"
        try:
            if self._app is None:
                self._app = self._build()
            result: dict[str, Any] = self._app.acquire_token_for_client(scopes=[creds.scope])
        except requests.RequestException as exc:
            raise Transient(f"{where} unreachable: {type(exc).__name__}") from None
        except ValueError as exc:  # msal's own refusal of the authority or its metadata
            raise Permanent(f"{where} cannot be used: {self._scrub(str(exc))}") from None
        if "access_token" in result:
            return result
        code = str(result.get("error") or "unknown_error")
        # Entra ID appends trace and correlation ids on further lines: the first one says it.
        lines = str(result.get("error_description") or "").splitlines()
        description = self._scrub(lines[0] if lines else "")
        text = f"{where} refused a token for client {creds.client_id}: {code} {description}"
        raise (AuthFailed if code in PERMANENT_ERRORS else Transient)(text.strip())

    def _build(self) -> Any:
        creds = self._credentials
        session = _CaSession(creds.ca_file) if creds.ca_file else requests.Session()
        return msal.ConfidentialClientApplication(
            creds.client_id,
            client_credential=creds.client_secret,
            authority=creds.authority,
            http_client=session,
            timeout=creds.timeout,
            # Private and test issuers are not in Microsoft's instance list.
            instance_discovery=False,
            validate_authority=False,
        )

    def _scrub(self, text: str) -> str:
        secret = self._credentials.client_secret
        return text.replace(secret, "***") if secret else text
