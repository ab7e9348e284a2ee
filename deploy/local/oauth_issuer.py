"""A local OAuth 2.0 issuer for development and tests, standing in for Entra ID.

- ``GET  /<tenant>/v2.0/.well-known/openid-configuration`` (msal's tenant discovery)
- ``POST /<tenant>/oauth2/v2.0/token``: the client-credentials grant; a registered client
  (id, secret) gets a random access token for its mailbox user, valid ``ttl`` seconds
- ``POST /introspect``: RFC 7662 token introspection, which Dovecot's oauth2 passdb
  (``introspection_mode = post``) calls to check a token sent with XOAUTH2/OAUTHBEARER

msal insists on an https authority, so discovery and tokens are served over TLS with a
``trustme`` CA and server certificate (requests/urllib3 refuse the self-signed certificate of
``deploy.local.tls``); ``ca_file`` is that CA. Introspection is served over plain http on loopback:
Dovecot is its only client, and its http client would need a CA setting of its own.

The servers run in daemon threads of the calling process (the test session, or
``deploy.local.servers``); mail servers and fetcher processes reach them over TCP.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Client:
    """A registered app: its secret, the mailbox user its tokens are for, their lifetime."""

    secret: str = field(repr=False)
    username: str
    ttl: int = 3600


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
    _servers: list[ThreadingHTTPServer] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def authority(self, tenant: str = "mailroom") -> str:
        """The msal authority URL for ``tenant``."""
        return f"https://127.0.0.1:{self.https_port}/{tenant}"

    @property
    def introspection_url(self) -> str:
        """Where Dovecot checks tokens."""
        return f"http://127.0.0.1:{self.http_port}/introspect"

    def add_client(self, client_id: str, secret: str, username: str, ttl: int = 3600) -> None:
        """Register (or change) an app whose tokens log in as ``username``."""
        with self._lock:
            self.clients[client_id] = Client(secret, username, ttl)

    def revoke_all(self) -> None:
        """Make every token issued so far inactive."""
        with self._lock:
            self.tokens.clear()

    def issue(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint's answer to a request form."""
        with self._lock:
            client = self.clients.get(form.get("client_id", ""))
            if form.get("grant_type") != "client_credentials":
                return 400, {"error": "unsupported_grant_type"}
            if client is None or not secrets.compare_digest(
                client.secret, form.get("client_secret", "")
            ):
                return 401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                }
            token = secrets.token_urlsafe(24)
            self.tokens[token] = (client.username, time.time() + client.ttl)
            self.issued += 1
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


def _handler(issuer: OAuthIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
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
                    },
                )
            return self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if path == "/introspect":
                return self._json(200, issuer.introspect(self._form().get("token", "")))
            if path.endswith("/oauth2/v2.0/token"):
                return self._json(*issuer.issue(self._form()))
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
