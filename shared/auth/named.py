"""Access tokens from a named credential (``mailroom credentials``), for one mail user.

A :class:`NamedTokenProvider` implements :class:`TokenProvider` for an account whose
``credential`` names a stored :class:`Credential`. It reads the credential (and, for delegated
flows, the sealed token cache) from MongoDB when it needs a token, so that a changed secret or
a new consent is used at the next refresh without a restart. The vendor call runs in a
thread (``shared.auth.vendors``).

Several fetcher and sender instances share one credential's refresh token. A refresh that
changed msal's cache is written only over the version it was read at; when another instance
wrote in between, this one reads that cache again and takes its (new) token from it rather
than overwriting the newer refresh token with its own.

Every outcome is noted on the credential's state (last token and expiry, or the issuer's
error text, and consent ``failing`` when a delegated refresh was refused), which credential
health and its alerts read.

A static credential (flow ``api_token``) has no issuer: its token is read from the store and
given as it is, with no expiry, until a server refuses it. Then there is nobody to ask for
another: whoever met the refusal calls :meth:`NamedTokenProvider.refused` with the server's
text, which marks the credential ``failing`` (and alerts) until a server accepts it again
or an administrator sets a new token; the next token is read from the store again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

from shared.auth.errors import AuthFailed
from shared.auth.oauth import CredentialHealth, TokenCache
from shared.auth.vendors import (
    Token,
    google_service_account_token,
    google_user_token,
    microsoft_delegated_token,
    msal_app,
    msal_result,
)
from shared.errors import MailroomError, StoreError, StoreUnavailable
from shared.models.credentials import Credential
from shared.redact import REDACTOR
from shared.store.credentials import CredentialRepo

log = logging.getLogger(__name__)
CACHE_WRITE_ATTEMPTS = 3
"""Reads of a cache another instance rewrote before this one gives up writing its own."""


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _client_credentials(credential: Credential) -> Token:
    app = msal_app(credential)
    result = msal_result(credential, app.acquire_token_for_client(credential.effective_scopes))
    return Token(str(result["access_token"]), float(result.get("expires_in") or 3600))


class NamedTokenProvider:
    """Tokens of the named credential ``name`` for mail user ``user``; ``on_refused`` is
    called with the name when the issuer refused a token (the alert goes out at once)."""

    def __init__(
        self,
        repo: CredentialRepo,
        name: str,
        *,
        user: str,
        clock: Callable[[], float] = time.time,
        on_refused: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._repo = repo
        self._on_refused = on_refused
        self._name = name
        self._user = user
        self._clock = clock
        self._cache = TokenCache(clock)
        self._lock = asyncio.Lock()
        self._static: str | None = None
        """A static credential's token, kept until a server refuses it."""
        self._is_static = False
        """The credential was a static one when last read."""

    @property
    def name(self) -> str:
        """The credential's name."""
        return self._name

    @property
    def health(self) -> CredentialHealth:
        """The credential's health as this provider saw it."""
        return self._cache.health

    def invalidate(self) -> None:
        """Forget the current token (a server refused it); the next call asks anew (a
        static token: reads it from the store again, where it may have been replaced)."""
        self._cache.forget()
        self._static = None

    async def token(self) -> str:
        """The current token, or a new one when it is near expiry."""
        async with self._lock:
            if self._static is not None:
                return self._static
            if (token := self._cache.fresh()) is not None:
                return token
            credential = await self._repo.get(name=self._name)
            # Known to the redactor before any library could log them.
            REDACTOR.register(
                *(s.get_secret_value() for s in credential.secrets() if s is not None)
            )
            self._is_static = credential.static
            if credential.static:
                return await self._take_static(credential)
            try:
                got = await self._acquire(credential)
            except MailroomError as exc:
                await self._failed(credential, exc)
                raise
            REDACTOR.register(got.access_token)
            came, expires = self._cache.keep(got.access_token, got.expires_in)
            await self._note(last_token_at=came, token_expires_at=expires)
            return got.access_token

    async def login_ok(self) -> None:
        """A mail server accepted a login with this credential's token."""
        if self._is_static:
            # The server is a static token's only judge: its yes ends an earlier refusal.
            await self._note(last_login_at=_utc(self._clock()), consent="not_needed")
        else:
            await self._note(last_login_at=_utc(self._clock()))

    async def refused(self, text: str) -> None:
        """A mail server refused this credential's token, saying ``text``. A static token is
        then marked failing with that text (and the alert goes out); an OAuth 2.0 token was
        invalidated already and its issuer answers at the next refresh, so nothing is done."""
        if not self._is_static:
            return
        self._static = None
        now = self._cache.failed(text)
        await self._note(last_error=text, last_error_at=now, consent="failing")
        if self._on_refused is not None:
            await self._on_refused(self._name)

    async def _take_static(self, credential: Credential) -> str:
        assert credential.token is not None  # the model requires it for a static credential
        token = credential.token.get_secret_value()
        now = _utc(self._clock())
        self._static = token
        self._cache.health = replace(self._cache.health, last_token_at=now, expires_at=None)
        await self._note(last_token_at=now, token_expires_at=None)
        return token

    async def _acquire(self, credential: Credential) -> Token:
        if credential.flow == "client_credentials":
            return await asyncio.to_thread(_client_credentials, credential)
        if credential.flow == "service_account":
            return await asyncio.to_thread(google_service_account_token, credential, self._user)
        for _ in range(CACHE_WRITE_ATTEMPTS):
            cache, version = await self._repo.cache(name=self._name)
            text = cache.get_secret_value() if cache else None
            if credential.provider == "google":
                return await asyncio.to_thread(google_user_token, credential, text)
            got = await asyncio.to_thread(microsoft_delegated_token, credential, text)
            if got.cache is None:
                return got
            written = await self._repo.save_cache(
                name=self._name,
                cache=got.cache,
                version=version,
                refresh_token_at=_utc(self._clock()),
            )
            if written is not None:
                return got
            # Another instance refreshed first: its cache holds the newest refresh token.
            log.info("credential %s: token cache changed meanwhile, reading it again", self._name)
        return got

    async def _failed(self, credential: Credential, exc: MailroomError) -> None:
        now = self._cache.failed(str(exc))
        fields: dict[str, object] = {"last_error": str(exc), "last_error_at": now}
        if isinstance(exc, AuthFailed) and credential.delegated:
            fields["consent"] = "failing"
        await self._note(**fields)
        if isinstance(exc, AuthFailed) and self._on_refused is not None:
            await self._on_refused(self._name)

    async def _note(self, **fields: object) -> None:
        # Best effort: a MongoDB hiccup must not turn a good token into a failed login.
        try:
            await self._repo.note(name=self._name, **fields)
        except (StoreError, StoreUnavailable) as exc:
            log.debug("credential %s state not noted: %s", self._name, type(exc).__name__)


async def judge_sign_in(provider: object, *, refused: str | None = None) -> None:
    """Tell ``provider``, when it is a named credential's, what a mail server made of a
    sign-in with its token: accepted (``refused`` None) or refused, saying ``refused``.
    Other providers keep no such record (an issuer's answer is their verdict)."""
    if not isinstance(provider, NamedTokenProvider):
        return
    if refused is None:
        await provider.login_ok()
    else:
        await provider.refused(refused)
