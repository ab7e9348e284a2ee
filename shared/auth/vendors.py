"""The blocking vendor calls behind named credentials: msal (Microsoft) and google-auth
(Google), each run in a worker thread by the caller, each translating its library's errors.

Microsoft delegated flows keep msal's ``SerializableTokenCache``: the caller hands in the
cache's text and gets it back when msal changed it (a refresh rotates the refresh token);
storing it (sealed, versioned) is the caller's job. Google's authorization-code flow keeps a
small JSON of its own (``{"refresh_token": ...}``) in the same place.

failure                                                   → Mailroom error
├── issuer refuses (invalid_grant, invalid_client, unauthorized_client, invalid_scope, …)
│                                                         → AuthFailed, with the issuer's text
├── no consent yet / consent withdrawn                    → AuthFailed ("authorize again")
└── issuer unreachable, timeout, 5xx                      → Transient

Texts never hold a secret, a key or a token: descriptions are scrubbed of the credential's
secrets before they are raised.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import msal
import requests
from cryptography.hazmat.primitives import serialization
from google.auth import exceptions as google_errors
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2 import credentials as google_user
from google.oauth2 import service_account

from shared.auth.errors import AuthFailed
from shared.auth.oauth import _CaSession
from shared.errors import Permanent, Transient
from shared.models.credentials import GOOGLE_TOKEN_URI, Credential, certificate_pair

GOOGLE_AUTHORIZE = "https://accounts.google.com/o/oauth2/v2/auth"
TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error", "slow_down"})


@dataclass(frozen=True)
class Token:
    """An access token and its lifetime; ``cache`` is the token cache's new text when it
    changed (None: unchanged), ``user`` the consenting user when the issuer named one."""

    access_token: str
    expires_in: float
    cache: str | None = None
    user: str | None = None


def _session(credential: Credential) -> requests.Session:
    return _CaSession(credential.ca_file) if credential.ca_file else requests.Session()


def scrub(credential: Credential, text: str) -> str:
    """``text`` with the credential's secrets (and the parts of a key) replaced by ***."""
    for secret in credential.secrets():
        value = secret.get_secret_value() if secret else ""
        if value:
            text = text.replace(value, "***")
            if credential.service_account_key is secret:
                try:
                    key = str(json.loads(value).get("private_key", ""))
                except ValueError:
                    key = ""
                if key:
                    text = text.replace(key, "***")
    return text


def _refused(credential: Credential, code: str, description: str) -> Exception:
    where = f"OAuth 2.0 issuer of credential {credential.name}"
    # Entra ID appends trace and correlation ids on further lines: the first one says it.
    first = (description.splitlines() or [""])[0]
    text = f"{where} refused: {code} {scrub(credential, first)}".strip()
    # Only the issuer's own "try later" answers are transient; any other refusal (an
    # invalid_grant for a revoked refresh token above all) needs the administrator.
    return Transient(text) if code in TRANSIENT_ERRORS else AuthFailed(text)


# --- Microsoft ---------------------------------------------------------------------------


def msal_app(credential: Credential, cache: msal.SerializableTokenCache | None = None) -> Any:
    """The msal application of a Microsoft credential: confidential with a client secret,
    public (device code) without."""
    common: dict[str, Any] = {
        "authority": credential.authority,
        "http_client": _session(credential),
        "token_cache": cache,
        # Private and test issuers are not in Microsoft's instance list.
        "instance_discovery": False,
        "validate_authority": False,
    }
    try:
        if credential.certificate is not None:
            key, cert = certificate_pair(credential.certificate.get_secret_value())
            # With the certificate msal signs PS256 assertions with its SHA-256 thumbprint.
            public = cert.public_bytes(serialization.Encoding.PEM).decode()
            return msal.ConfidentialClientApplication(
                credential.client_id,
                client_credential={"private_key": key, "public_certificate": public},
                **common,
            )
        if credential.client_secret is not None:
            return msal.ConfidentialClientApplication(
                credential.client_id,
                client_credential=credential.client_secret.get_secret_value(),
                **common,
            )
        return msal.PublicClientApplication(credential.client_id, **common)
    except requests.RequestException as exc:
        raise Transient(
            f"OAuth 2.0 authority {credential.authority} unreachable: {type(exc).__name__}"
        ) from None
    except ValueError as exc:  # msal's own refusal of the authority or its metadata
        raise Permanent(
            f"OAuth 2.0 authority {credential.authority} cannot be used: "
            f"{scrub(credential, str(exc))}"
        ) from None


def _msal_scopes(credential: Credential) -> list[str]:
    # msal adds openid, profile and offline_access itself and refuses them given twice.
    reserved = {"openid", "profile", "offline_access"}
    return [s for s in credential.effective_scopes if s not in reserved]


def msal_result(credential: Credential, result: dict[str, Any] | None) -> dict[str, Any]:
    """msal's answer when it holds a token; else the refusal (or missing consent) raised."""
    if result and "access_token" in result:
        return result
    if not result:
        raise AuthFailed(
            f"credential {credential.name} has no consent (or msal's cache holds no account): "
            f"run `mailroom credentials authorize {credential.name}`"
        )
    raise _refused(
        credential,
        str(result.get("error") or "unknown_error"),
        str(result.get("error_description") or ""),
    )


def microsoft_delegated_token(credential: Credential, cache_text: str | None) -> Token:
    """An access token from msal's cache, refreshed with its refresh token when due."""
    cache = msal.SerializableTokenCache()
    if cache_text:
        cache.deserialize(cache_text)
    app = msal_app(credential, cache)
    try:
        accounts = app.get_accounts()
        result = (
            app.acquire_token_silent_with_error(_msal_scopes(credential), account=accounts[0])
            if accounts
            else None
        )
    except requests.RequestException as exc:
        raise Transient(
            f"OAuth 2.0 authority {credential.authority} unreachable: {type(exc).__name__}"
        ) from None
    result = msal_result(credential, result)
    return Token(
        access_token=str(result["access_token"]),
        expires_in=float(result.get("expires_in") or 3600),
        cache=cache.serialize() if cache.has_state_changed else None,
        user=str(accounts[0].get("username") or "") or None,
    )


def microsoft_start_code_flow(credential: Credential) -> dict[str, Any]:
    """msal's authorization-code flow (with PKCE): ``auth_uri`` for the browser, the rest
    (state, code verifier, nonce) to keep until the redirect comes back."""
    # form_post keeps the code out of the redirect URL (browser history, proxy logs).
    flow: dict[str, Any] = msal_app(credential).initiate_auth_code_flow(
        _msal_scopes(credential), redirect_uri=credential.redirect_uri, response_mode="form_post"
    )
    return flow


def microsoft_finish_code_flow(
    credential: Credential, flow: dict[str, Any], query: dict[str, str]
) -> Token:
    """Redeem the redirect's code (msal checks state and sends the PKCE verifier)."""
    cache = msal.SerializableTokenCache()
    try:
        result = msal_app(credential, cache).acquire_token_by_auth_code_flow(flow, query)
    except ValueError as exc:  # msal: state mismatch or a redirect without code
        raise AuthFailed(f"consent for credential {credential.name} not usable: {exc}") from None
    except requests.RequestException as exc:
        raise Transient(f"OAuth 2.0 authority unreachable: {type(exc).__name__}") from None
    return _consented(credential, cache, msal_result(credential, result))


def microsoft_start_device_flow(credential: Credential) -> dict[str, Any]:
    """msal's device flow: ``user_code``, ``verification_uri`` and ``message`` for the user."""
    flow: dict[str, Any] = msal_app(credential).initiate_device_flow(_msal_scopes(credential))
    if "user_code" not in flow:
        raise _refused(
            credential,
            str(flow.get("error") or "unknown_error"),
            str(flow.get("error_description") or ""),
        )
    return flow


def microsoft_finish_device_flow(credential: Credential, flow: dict[str, Any]) -> Token:
    """Poll until the user signed in with the code (or the code expired)."""
    cache = msal.SerializableTokenCache()
    try:
        result = msal_app(credential, cache).acquire_token_by_device_flow(flow)
    except requests.RequestException as exc:
        raise Transient(f"OAuth 2.0 authority unreachable: {type(exc).__name__}") from None
    return _consented(credential, cache, msal_result(credential, result))


def _consented(
    credential: Credential, cache: msal.SerializableTokenCache, result: dict[str, Any]
) -> Token:
    claims = result.get("id_token_claims") or {}
    return Token(
        access_token=str(result["access_token"]),
        expires_in=float(result.get("expires_in") or 3600),
        cache=cache.serialize(),
        user=str(claims.get("preferred_username") or "") or None,
    )


# --- Google ------------------------------------------------------------------------------


def _google_refresh(credential: Credential, creds: Any) -> None:
    try:
        creds.refresh(GoogleRequest(session=_session(credential)))
    except google_errors.RefreshError as exc:
        # google-auth words it "<error>: <error_description>" in its first argument.
        raise AuthFailed(
            f"Google token endpoint refused credential {credential.name}: "
            f"{scrub(credential, str(exc.args[0] if exc.args else exc))}"
        ) from None
    except google_errors.TransportError as exc:
        raise Transient(
            f"Google token endpoint unreachable for credential {credential.name}: "
            f"{type(exc).__name__}"
        ) from None


def google_service_account_token(credential: Credential, user: str) -> Token:
    """A token for ``user`` through domain-wide delegation (JWT bearer grant)."""
    assert credential.service_account_key is not None
    try:
        info = json.loads(credential.service_account_key.get_secret_value())
        if credential.authority:
            info["token_uri"] = credential.authority
        creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=credential.effective_scopes, subject=user
        )
    except (ValueError, KeyError) as exc:
        raise Permanent(
            f"credential {credential.name}: the service account key is not a Google JSON key "
            f"({type(exc).__name__})"
        ) from None
    _google_refresh(credential, creds)
    return Token(access_token=str(creds.token), expires_in=_google_lifetime(creds))


def _google_lifetime(creds: Any) -> float:
    expiry: datetime | None = creds.expiry  # naive UTC, as google-auth keeps it
    if expiry is None:
        return 3600.0
    return max(0.0, (expiry.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds())


def google_user_token(credential: Credential, cache_text: str | None) -> Token:
    """A token from the consenting user's refresh token."""
    refresh = json.loads(cache_text).get("refresh_token") if cache_text else None
    if not refresh:
        raise AuthFailed(
            f"credential {credential.name} has no consent: "
            f"run `mailroom credentials authorize {credential.name}`"
        )
    assert credential.client_secret is not None
    creds = google_user.Credentials(  # type: ignore[no-untyped-call]
        None,
        refresh_token=refresh,
        token_uri=credential.token_uri,
        client_id=credential.client_id,
        client_secret=credential.client_secret.get_secret_value(),
        scopes=credential.effective_scopes,
    )
    _google_refresh(credential, creds)
    return Token(access_token=str(creds.token), expires_in=_google_lifetime(creds))


def google_start_code_flow(credential: Credential) -> dict[str, Any]:
    """The consent URL (offline access, PKCE) and the state and verifier to keep."""
    verifier = secrets.token_urlsafe(48)
    challenge = urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    state = secrets.token_urlsafe(24)
    token_uri = credential.token_uri
    # A private issuer serves the authorization endpoint beside its token endpoint.
    base = GOOGLE_AUTHORIZE
    if token_uri != GOOGLE_TOKEN_URI:
        parts = urlsplit(token_uri)
        base = f"{parts.scheme}://{parts.netloc}/o/oauth2/v2/auth"
    query = {
        "client_id": credential.client_id,
        "redirect_uri": credential.redirect_uri,
        "response_type": "code",
        "scope": " ".join(credential.effective_scopes),
        "access_type": "offline",
        "prompt": "consent",
        "state": state,
        "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
    }
    return {"auth_uri": f"{base}?{urlencode(query)}", "state": state, "code_verifier": verifier}


def google_finish_code_flow(
    credential: Credential, flow: dict[str, Any], query: dict[str, str]
) -> Token:
    """Redeem the redirect's code at Google's token endpoint (the code grant with PKCE)."""
    if query.get("state") != flow.get("state"):
        raise AuthFailed(f"consent for credential {credential.name}: state does not match")
    if "code" not in query:
        raise AuthFailed(
            f"consent for credential {credential.name} refused: {query.get('error', 'no code')}"
        )
    assert credential.client_secret is not None
    form = {
        "grant_type": "authorization_code",
        "code": query["code"],
        "client_id": credential.client_id or "",
        "client_secret": credential.client_secret.get_secret_value(),
        "redirect_uri": credential.redirect_uri or "",
        "code_verifier": str(flow["code_verifier"]),
    }
    try:
        response = _session(credential).post(credential.token_uri, data=form, timeout=30)
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise Transient(f"Google token endpoint unreachable: {type(exc).__name__}") from None
    if "access_token" not in body or "refresh_token" not in body:
        raise _refused(
            credential,
            str(body.get("error") or "no_refresh_token"),
            str(body.get("error_description") or ""),
        )
    return Token(
        access_token=str(body["access_token"]),
        expires_in=float(body.get("expires_in") or 3600),
        cache=json.dumps({"refresh_token": body["refresh_token"]}),
    )
