"""A local OAuth 2.0 issuer for development and tests, standing in for Entra ID and Google.

- ``GET  /<tenant>/v2.0/.well-known/openid-configuration`` (msal's tenant discovery)
- ``POST /<tenant>/oauth2/v2.0/token``: the client-credentials grant; a registered client
  (id, secret) gets a random access token for its mailbox user, valid ``ttl`` seconds; and the
  delegated grants (authorization code with PKCE, device code, refresh token)
- ``GET  /<tenant>/oauth2/v2.0/authorize``, ``POST /<tenant>/oauth2/v2.0/devicecode``: where a
  user consents (Microsoft identity platform v2.0)
- ``GET  /o/oauth2/v2/auth``, ``POST /token``: Google's authorization and token endpoints (JWT
  bearer grant for service accounts, authorization code, refresh)
- ``POST /introspect``: RFC 7662 token introspection, which Dovecot's oauth2 passdb
  (``introspection_mode = post``) calls to check a token sent with XOAUTH2/OAUTHBEARER

msal insists on an https authority, so discovery and tokens are served over TLS with a
``trustme`` CA and server certificate (requests/urllib3 refuse the self-signed certificate of
``deploy.local.tls``); ``ca_file`` is that CA. Introspection is served over plain http on loopback:
Dovecot is its only client, and its http client would need a CA setting of its own.

The grants follow the vendors' documented wire formats; ``deploy.local.oauth_grants`` names
the pages. The servers run in daemon threads of the calling process (the test session, or
``deploy.local.servers``); mail servers and fetcher processes reach them over TCP.
"""

from __future__ import annotations

import html
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography import x509

from deploy.local.oauth_grants import Grants, client_assertion_refused


@dataclass
class Client:
    """A registered app: its secret, the mailbox user its tokens are for, their lifetime."""

    secret: str | None = field(repr=False)
    """None: a public client (device code), which authenticates with no secret."""
    username: str
    ttl: int = 3600
    certificate: x509.Certificate | None = None
    """A certificate credential: the client proves itself with an assertion it signs."""


@dataclass
class OAuthIssuer:
    """The running issuer and what tests need to point msal and Dovecot at it."""

    https_port: int
    http_port: int
    ca_file: Path
    clients: dict[str, Client] = field(default_factory=dict)
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)
    issued: int = 0
    """Tokens handed out so far (lets tests see caching and refreshes)."""
    grants: Grants = field(init=False, repr=False)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.grants = Grants(issuer_url=lambda tenant: f"{self.authority(tenant)}/v2.0")

    def authority(self, tenant: str = "mailroom") -> str:
        """The msal authority URL for ``tenant``."""
        return f"https://127.0.0.1:{self.https_port}/{tenant}"

    @property
    def introspection_url(self) -> str:
        """Where Dovecot checks tokens."""
        return f"http://127.0.0.1:{self.http_port}/introspect"

    @property
    def google_token_uri(self) -> str:
        """Google's token endpoint, here."""
        return f"https://127.0.0.1:{self.https_port}/token"

    def add_client(
        self,
        client_id: str,
        secret: str | None,
        username: str,
        ttl: int = 3600,
        certificate: x509.Certificate | None = None,
    ) -> None:
        """Register (or change) an app whose tokens log in as ``username`` (in the delegated
        flows: the user who consents); ``secret`` None is a public client, unless it has a
        ``certificate`` to sign its assertions with."""
        with self._lock:
            self.clients[client_id] = Client(secret, username, ttl, certificate)

    def approve_device(self, user_code: str) -> None:
        """The client's user signs in on the device-login page with ``user_code``."""
        with self._lock:
            client = next(
                self.clients[p.client_id]
                for p in self.grants.devices.values()
                if p.user_code == user_code
            )
            self.grants.approve_device(user_code, client.username)

    def revoke_user(self, username: str) -> int:
        """Revoke ``username``'s refresh tokens and access tokens (e.g. a password reset)."""
        with self._lock:
            for token, (user, _) in list(self.tokens.items()):
                if user == username:
                    del self.tokens[token]
            return self.grants.revoke(username)

    def expire_tokens(self) -> None:
        """Let every access token issued so far expire now (refresh tokens stay good)."""
        with self._lock:
            self.tokens = {t: (user, 0.0) for t, (user, _) in self.tokens.items()}

    def _client_ok(self, form: dict[str, str], audience: str) -> bool:
        client = self.clients.get(form.get("client_id", ""))
        if client is None:
            return False
        if client.certificate is not None:
            return client_assertion_refused(form, client.certificate, audience) is None
        if client.secret is None:
            return True
        return secrets.compare_digest(client.secret, form.get("client_secret", ""))

    def _issue(self, username: str, ttl: int) -> str:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = (username, time.time() + ttl)
        self.issued += 1
        return token

    def _ttl(self, client_id: str) -> int:
        client = self.clients.get(client_id)
        return client.ttl if client else 3600

    def authorize(self, query: dict[str, str]) -> dict[str, str]:
        """``/authorize``: what the browser takes back to the redirect URI after the
        client's user consented (or why not)."""
        with self._lock:
            client = self.clients.get(query.get("client_id", ""))
            if client is None:
                return {"error": "unauthorized_client", "state": query.get("state", "")}
            return self.grants.authorize(query, client.username)

    def device_code(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """``/devicecode``."""
        with self._lock:
            if form.get("client_id") not in self.clients:
                return 400, {"error": "unauthorized_client", "error_description": "AADSTS700016"}
            uri = f"https://127.0.0.1:{self.https_port}/devicelogin"
            return self.grants.device_code(form, uri)

    def microsoft_token(self, form: dict[str, str], tenant: str) -> tuple[int, dict[str, Any]]:
        """``/<tenant>/oauth2/v2.0/token``: client credentials, or a delegated grant."""
        audience = f"{self.authority(tenant)}/oauth2/v2.0/token"
        if form.get("grant_type") == "client_credentials":
            return self.issue(form, audience)
        with self._lock:
            ttl = self._ttl(form.get("client_id", ""))
            return self.grants.microsoft_token(
                form, tenant, lambda f: self._client_ok(f, audience), ttl, self._issue
            )

    def google_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Google's ``/token``."""
        with self._lock:
            ttl = self._ttl(form.get("client_id", ""))
            uri = self.google_token_uri
            return self.grants.google_token(
                form, lambda f: self._client_ok(f, uri), ttl, self._issue
            )

    def revoke_all(self) -> None:
        """Make every token issued so far inactive."""
        with self._lock:
            self.tokens.clear()

    def issue(self, form: dict[str, str], audience: str) -> tuple[int, dict[str, Any]]:
        """The client-credentials grant's answer to a request form (with a client secret, or
        an assertion signed for ``audience``)."""
        with self._lock:
            client = self.clients.get(form.get("client_id", ""))
            if form.get("grant_type") != "client_credentials":
                return 400, {"error": "unsupported_grant_type"}
            if client is not None and client.certificate is not None:
                refused = client_assertion_refused(form, client.certificate, audience)
                if refused:
                    return 401, {"error": "invalid_client", "error_description": refused}
            elif client is None or not secrets.compare_digest(
                client.secret or "", form.get("client_secret", "")
            ):
                return 401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                }
            token = self._issue(client.username, client.ttl)
            return 200, {"access_token": token, "token_type": "Bearer", "expires_in": client.ttl}

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662: active with the username, or inactive."""
        with self._lock:
            user, expiry = self.tokens.get(token, ("", 0.0))
        if not user or expiry <= time.time():
            return {"active": False}
        return {"active": True, "username": user, "sub": user, "exp": int(expiry)}

    def stop(self) -> None:
        """Stop both servers."""
        for server in self._servers:
            server.shutdown()
            server.server_close()


def _form_post(redirect: str, answer: dict[str, str]) -> str:
    """The page Entra answers with for ``response_mode=form_post``: a form the browser posts
    to the redirect URI at once."""
    fields = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in answer.items()
    )
    return (
        '<html><body onload="document.forms[0].submit()">'
        f'<form method="POST" action="{html.escape(redirect)}">{fields}</form></body></html>'
    )


def _handler(issuer: OAuthIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _page(self, html: str) -> None:
            data = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            text = self.rfile.read(length).decode()
            return {key: values[0] for key, values in parse_qs(text).items()}

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path.endswith("/.well-known/openid-configuration"):
                tenant = path.strip("/").split("/")[0]
                base = f"https://127.0.0.1:{issuer.https_port}/{tenant}"
                return self._json(
                    200,
                    {
                        "issuer": f"{base}/v2.0",
                        "token_endpoint": f"{base}/oauth2/v2.0/token",
                        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    },
                )
            if path.endswith("/oauth2/v2.0/authorize") or path == "/o/oauth2/v2/auth":
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                answer, redirect = issuer.authorize(query), query.get("redirect_uri", "")
                if query.get("response_mode") == "form_post":
                    return self._page(_form_post(redirect, answer))
                self.send_response(302)
                self.send_header("Location", f"{redirect}?{urlencode(answer)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if path == "/introspect":
                return self._json(200, issuer.introspect(self._form().get("token", "")))
            if path.endswith("/oauth2/v2.0/token"):
                tenant = path.strip("/").split("/")[0]
                return self._json(*issuer.microsoft_token(self._form(), tenant))
            if path.endswith("/oauth2/v2.0/devicecode"):
                return self._json(*issuer.device_code(self._form()))
            if path == "/token":
                return self._json(*issuer.google_token(self._form()))
            return self._json(404, {"error": "not_found"})

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: request lines would carry nothing useful, and logs must stay short."""

    return Handler


def start_oauth_issuer(state_dir: Path) -> OAuthIssuer:
    """Start the issuer on free loopback ports with a fresh CA (written to ``state_dir``)."""
    # Test extra only: `make run` imports this module (through servers.py) without it.
    import trustme

    ca = trustme.CA()
    ca_file = state_dir / "tls" / "oauth-ca.pem"
    ca_file.parent.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(ca_file))
    issuer = OAuthIssuer(https_port=0, http_port=0, ca_file=ca_file)
    handler = _handler(issuer)
    https = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    https.socket = context.wrap_socket(https.socket, server_side=True)
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    issuer.https_port, issuer.http_port = https.server_port, http.server_port
    for server in (https, http):
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True, name="oauth-issuer").start()
        issuer._servers.append(server)
    return issuer
