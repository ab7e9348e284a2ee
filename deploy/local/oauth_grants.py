"""The delegated and Google grants of the local OAuth 2.0 issuer (``deploy.local.oauth_issuer``),
answering with the fields and error texts the vendors document, so that msal and google-auth
talk to it exactly as to Entra ID and Google.

Pages followed (wire formats, error codes and texts):

- Microsoft identity platform, "OAuth 2.0 authorization code flow"
  (learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow): ``/authorize`` with
  ``response_type=code``, ``state``, ``code_challenge`` / ``code_challenge_method=S256``,
  answered to the redirect URI in the query or, with ``response_mode=form_post``, as an HTML
  form the browser posts;
  ``/token`` with ``grant_type=authorization_code`` and ``code_verifier``, answering
  ``access_token``, ``token_type``, ``expires_in``, ``scope``, ``refresh_token``,
  ``id_token``; ``grant_type=refresh_token`` the same; ``invalid_grant`` with AADSTS texts.
- Microsoft identity platform, "Certificate credentials for application authentication"
  (learn.microsoft.com/entra/identity-platform/certificate-credentials): ``client_assertion``
  with ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``, a
  JWT with header ``alg`` PS256 (RS256 still taken) and ``x5t#S256`` (or ``x5t``), claims
  ``aud`` the token endpoint, ``iss`` = ``sub`` = the client id, ``jti``, ``nbf``, ``exp``.
- Microsoft identity platform, "OAuth 2.0 device authorization grant"
  (learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code): ``/devicecode``
  answering ``device_code``, ``user_code``, ``verification_uri``, ``expires_in``,
  ``interval``, ``message``; ``/token`` with
  ``grant_type=urn:ietf:params:oauth:grant-type:device_code`` answering
  ``authorization_pending`` until the user signed in, ``expired_token`` after.
- Google, "Using OAuth 2.0 for Server to Server Applications"
  (developers.google.com/identity/protocols/oauth2/service-account): POST to
  ``https://oauth2.googleapis.com/token`` with
  ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and an RS256 ``assertion``
  (``iss`` the service account, ``sub`` the impersonated user, ``scope``, ``aud`` always
  ``https://oauth2.googleapis.com/token``, ``iat``, ``exp`` at most an hour later);
  ``unauthorized_client`` when domain-wide delegation is not granted.
- Google, "Using OAuth 2.0 for Web Server Applications"
  (developers.google.com/identity/protocols/oauth2/web-server): ``/o/oauth2/v2/auth`` with
  ``access_type=offline``; code exchange and ``grant_type=refresh_token`` at the token URI;
  a revoked or expired refresh token answers 400 ``invalid_grant`` "Token has been expired or
  revoked."

The user's browser sign-in is not simulated beyond what a test needs: ``/authorize`` consents at
once as the client's registered user, and :meth:`Grants.approve_device` is the user typing
the code on the device-login page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_JWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GOOGLE_AUDIENCE = "https://oauth2.googleapis.com/token"
MS_REVOKED = (
    "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token "
    "is needed. The user might have changed or reset their password."
)
GOOGLE_REVOKED = "Token has been expired or revoked."

Answer = tuple[int, dict[str, Any]]
Issue = Callable[[str, int], str]
"""Makes an access token for a user, valid so many seconds (the issuer's introspection
then knows it)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _error(status: int, code: str, description: str) -> Answer:
    return status, {"error": code, "error_description": description}


@dataclass
class Refresh:
    """What a refresh token stands for."""

    client_id: str
    username: str
    scope: str
    provider: str
    revoked: bool = False


@dataclass
class Pending:
    """An authorization code or a device code not yet redeemed."""

    client_id: str
    username: str | None
    scope: str
    expires: float
    redirect_uri: str = ""
    challenge: str = ""
    nonce: str = ""
    user_code: str = ""


@dataclass
class Grants:
    """The state of the delegated and Google grants; the issuer holds one and locks it."""

    issuer_url: Callable[[str], str]
    """The ``iss`` of a tenant's ID tokens (as in its discovery document)."""
    codes: dict[str, Pending] = field(default_factory=dict, repr=False)
    devices: dict[str, Pending] = field(default_factory=dict, repr=False)
    refresh: dict[str, Refresh] = field(default_factory=dict, repr=False)
    service_accounts: dict[str, tuple[rsa.RSAPublicKey, frozenset[str]]] = field(
        default_factory=dict, repr=False
    )
    """Google service accounts: public key and the users domain-wide delegation covers."""

    # --- the user's side ------------------------------------------------------------------

    def authorize(self, query: dict[str, str], username: str) -> dict[str, str]:
        """``/authorize``: what goes back to the redirect URI — a code (the user consented)
        or an error, with the state."""
        redirect = query.get("redirect_uri", "")
        state = {"state": query["state"]} if "state" in query else {}
        if query.get("response_type") != "code" or not redirect:
            return {"error": "unsupported_response_type", **state}
        if query.get("code_challenge") and query.get("code_challenge_method") != "S256":
            return {"error": "invalid_request", **state}
        code = secrets.token_urlsafe(24)
        self.codes[code] = Pending(
            client_id=query.get("client_id", ""),
            username=username,
            scope=query.get("scope", ""),
            expires=time.time() + 600,
            redirect_uri=redirect,
            challenge=query.get("code_challenge", ""),
            nonce=query.get("nonce", ""),
        )
        return {"code": code, **state}

    def device_code(self, form: dict[str, str], verification_uri: str) -> Answer:
        """``/devicecode``: a device code and the user code to type at ``verification_uri``."""
        device, user_code = secrets.token_urlsafe(24), secrets.token_hex(4).upper()
        self.devices[device] = Pending(
            client_id=form.get("client_id", ""),
            username=None,
            scope=form.get("scope", ""),
            expires=time.time() + 900,
            user_code=user_code,
        )
        message = (
            f"To sign in, use a web browser to open the page {verification_uri} and enter the "
            f"code {user_code} to authenticate."
        )
        return 200, {
            "device_code": device,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "expires_in": 900,
            "interval": 1,
            "message": message,
        }

    def approve_device(self, user_code: str, username: str) -> None:
        """The user signed in on the device-login page with ``user_code``."""
        for pending in self.devices.values():
            if pending.user_code == user_code:
                pending.username = username
                return
        raise KeyError(user_code)

    def revoke(self, username: str) -> int:
        """Revoke every refresh token of ``username`` (a password reset, an admin's revoke)."""
        hits = [r for r in self.refresh.values() if r.username == username and not r.revoked]
        for grant in hits:
            grant.revoked = True
        return len(hits)

    def add_service_account(
        self, client_email: str, public_key: rsa.RSAPublicKey, users: frozenset[str]
    ) -> None:
        """Register a Google service account allowed to act for ``users``."""
        self.service_accounts[client_email] = (public_key, users)

    # --- Microsoft's token endpoint --------------------------------------------------------

    def microsoft_token(
        self,
        form: dict[str, str],
        tenant: str,
        client_ok: Callable[[dict[str, str]], bool],
        ttl: int,
        issue: Issue,
    ) -> Answer:
        """The delegated grants of ``/<tenant>/oauth2/v2.0/token``."""
        grant = form.get("grant_type")
        client_id = form.get("client_id", "")
        if not client_ok(form):
            return _error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        if grant == "authorization_code":
            pending = self.codes.pop(form.get("code", ""), None)
            if pending is None or pending.client_id != client_id or pending.expires < time.time():
                return _error(
                    400,
                    "invalid_grant",
                    "AADSTS70000: The provided value for the 'code' parameter is not valid.",
                )
            if pending.redirect_uri != form.get("redirect_uri"):
                return _error(
                    400,
                    "invalid_grant",
                    "AADSTS50011: The redirect URI specified in the request does not match "
                    "the redirect URIs configured for the application.",
                )
            verifier = form.get("code_verifier", "")
            if pending.challenge and _b64(hashlib.sha256(verifier.encode()).digest()) != (
                pending.challenge
            ):
                return _error(
                    400,
                    "invalid_grant",
                    "AADSTS501481: The Code_Verifier does not match the code_challenge supplied "
                    "in the authorization request.",
                )
            return self._ms_tokens(client_id, pending, tenant, ttl, issue)
        if grant == DEVICE_GRANT:
            pending = self.devices.get(form.get("device_code", ""))
            if pending is None or pending.client_id != client_id:
                return _error(400, "bad_verification_code", "AADSTS70019: Invalid device code.")
            if pending.expires < time.time():
                return _error(400, "expired_token", "AADSTS70019: Verification code expired.")
            if pending.username is None:
                return _error(
                    400,
                    "authorization_pending",
                    "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. "
                    "Continue polling.",
                )
            del self.devices[form["device_code"]]
            return self._ms_tokens(client_id, pending, tenant, ttl, issue)
        if grant == "refresh_token":
            known = self.refresh.get(form.get("refresh_token", ""))
            if known is None or known.client_id != client_id or known.provider != "microsoft":
                return _error(
                    400,
                    "invalid_grant",
                    "AADSTS9002313: Invalid request. Request is malformed or invalid.",
                )
            if known.revoked:
                return _error(400, "invalid_grant", MS_REVOKED)
            # Entra rotates refresh tokens; the old one stays valid until it expires.
            pending = Pending(client_id, known.username, form.get("scope") or known.scope, 0)
            return self._ms_tokens(client_id, pending, tenant, ttl, issue)
        return _error(400, "unsupported_grant_type", f"AADSTS70003: {grant} is not supported.")

    def _ms_tokens(
        self, client_id: str, pending: Pending, tenant: str, ttl: int, issue: Issue
    ) -> Answer:
        assert pending.username is not None
        user = pending.username
        refresh = secrets.token_urlsafe(32)
        self.refresh[refresh] = Refresh(client_id, user, pending.scope, "microsoft")
        uid, utid = hashlib.sha1(user.encode()).hexdigest()[:16], tenant  # noqa: S324 - an id
        now = int(time.time())
        claims = {
            "iss": self.issuer_url(tenant),
            "aud": client_id,
            "sub": uid,
            "oid": uid,
            "tid": utid,
            "preferred_username": user,
            "iat": now,
            "exp": now + ttl,
            **({"nonce": pending.nonce} if pending.nonce else {}),
        }
        # Unsigned ID token: msal reads its claims only (the TLS channel vouches for it).
        id_token = ".".join(
            (_b64(b'{"alg":"none","typ":"JWT"}'), _b64(json.dumps(claims).encode()), "")
        )
        scope = " ".join(s for s in pending.scope.split() if s not in ("openid", "profile"))
        return 200, {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": ttl,
            "ext_expires_in": ttl,
            "access_token": issue(user, ttl),
            "refresh_token": refresh,
            "id_token": id_token,
            "client_info": _b64(json.dumps({"uid": uid, "utid": utid}).encode()),
        }

    # --- Google's token endpoint -----------------------------------------------------------

    def google_token(
        self,
        form: dict[str, str],
        client_ok: Callable[[dict[str, str]], bool],
        ttl: int,
        issue: Issue,
    ) -> Answer:
        """``https://oauth2.googleapis.com/token``: JWT bearer, code and refresh grants."""
        grant = form.get("grant_type")
        if grant == JWT_BEARER:
            return self._jwt_bearer(form.get("assertion", ""), ttl, issue)
        client_id = form.get("client_id", "")
        if not client_ok(form):
            return _error(401, "invalid_client", "Unauthorized")
        if grant == "authorization_code":
            pending = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            if (
                pending is None
                or pending.client_id != client_id
                or pending.redirect_uri != form.get("redirect_uri")
                or (
                    pending.challenge
                    and _b64(hashlib.sha256(verifier.encode()).digest()) != pending.challenge
                )
            ):
                return _error(400, "invalid_grant", "Bad Request")
            assert pending.username is not None
            refresh = secrets.token_urlsafe(32)
            self.refresh[refresh] = Refresh(client_id, pending.username, pending.scope, "google")
            return 200, {
                "access_token": issue(pending.username, ttl),
                "expires_in": ttl,
                "refresh_token": refresh,
                "scope": pending.scope,
                "token_type": "Bearer",
            }
        if grant == "refresh_token":
            known = self.refresh.get(form.get("refresh_token", ""))
            if known is None or known.revoked or known.client_id != client_id:
                return _error(400, "invalid_grant", GOOGLE_REVOKED)
            return 200, {
                "access_token": issue(known.username, ttl),
                "expires_in": ttl,
                "scope": known.scope,
                "token_type": "Bearer",
            }
        return _error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")

    def _jwt_bearer(self, assertion: str, ttl: int, issue: Issue) -> Answer:
        try:
            head, body, signature = assertion.split(".")
            claims = json.loads(_unb64(body))
            header = json.loads(_unb64(head))
        except ValueError:
            return _error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token")
        known = self.service_accounts.get(str(claims.get("iss")))
        if known is None or header.get("alg") != "RS256":
            return _error(400, "invalid_grant", "Invalid grant: account not found")
        key, users = known
        try:
            key.verify(
                _unb64(signature),
                f"{head}.{body}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return _error(400, "invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        # Google's page: aud "is always https://oauth2.googleapis.com/token", wherever the
        # request goes (google-auth sends it so).
        if claims.get("aud") != GOOGLE_AUDIENCE or not claims.get(
            "iat", 0
        ) - 300 <= now <= claims.get("exp", 0):
            return _error(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim.",
            )
        subject = str(claims.get("sub") or "")
        if subject not in users:
            return _error(
                401,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client "
                "not authorized for any of the scopes requested.",
            )
        return 200, {"access_token": issue(subject, ttl), "expires_in": ttl, "token_type": "Bearer"}


def client_assertion_refused(
    form: dict[str, str], certificate: x509.Certificate, audience: str
) -> str | None:
    """Why a certificate credential's ``client_assertion`` is refused (Entra's AADSTS text),
    or None when it is good: signed (PS256 or RS256) by the registered certificate's key,
    ``x5t#S256`` or ``x5t`` its thumbprint, ``aud`` the token endpoint, ``iss`` and ``sub``
    the client id, within ``nbf``..``exp``."""
    if form.get("client_assertion_type") != CLIENT_ASSERTION_JWT:
        return "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required."
    try:
        head, body, signature = form.get("client_assertion", "").split(".")
        header, claims = json.loads(_unb64(head)), json.loads(_unb64(body))
    except ValueError:
        return "AADSTS50027: JWT token is invalid or malformed."
    thumbprints = {
        _b64(certificate.fingerprint(hashes.SHA256())),
        _b64(certificate.fingerprint(hashes.SHA1())),  # noqa: S303 - x5t is SHA-1 by definition
    }
    # msal pads its base64url thumbprints, RFC 7515 does not: either is taken.
    given = {str(header.get(name) or "").rstrip("=") for name in ("x5t#S256", "x5t")}
    if not given & thumbprints:
        return (
            "AADSTS700027: The certificate with identifier used to sign the client assertion "
            "is not registered on application."
        )
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    pad: padding.AsymmetricPadding = padding.PKCS1v15()
    if header.get("alg") == "PS256":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    try:
        key.verify(_unb64(signature), f"{head}.{body}".encode(), pad, hashes.SHA256())
    except InvalidSignature:
        return "AADSTS700027: Client assertion failed signature validation."
    client_id = form.get("client_id") or claims.get("iss")
    now = time.time()
    if claims.get("aud") != audience or not claims.get("iss") == claims.get("sub") == client_id:
        return "AADSTS700021: Client assertion application identifier doesn't match."
    if not claims.get("nbf", 0) - 300 <= now <= claims.get("exp", 0):
        return "AADSTS700024: Client assertion is not within its valid time range."
    return None


def app_certificate(days: int) -> tuple[str, x509.Certificate]:
    """A self-signed RSA certificate valid for ``days`` and its key, as one PEM (what an
    administrator uploads to an Entra app registration and gives Mailroom)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "mailroom app")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pem = (
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        + cert.public_bytes(serialization.Encoding.PEM).decode()
    )
    return pem, cert


def service_account_key(client_email: str, token_uri: str) -> tuple[str, rsa.RSAPublicKey]:
    """A new Google service account JSON key (as the console downloads it) and its public key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key = {
        "type": "service_account",
        "project_id": "mailroom-test",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": client_email,
        "client_id": str(secrets.randbelow(10**20)),
        "token_uri": token_uri,
    }
    return json.dumps(key), private.public_key()
