"""The local default's configuration: what ``make run`` sets up on its own servers.

Applied through the running pipeline's HTTP API, so every value passes the same validation,
audit and broadcast as an operator's change. Only for the local default (the MongoDB
stand-in and broker ``make run`` started): a user's own servers get nothing invented.

First start of a data directory: the incoming account ``local`` (IMAP with STARTTLS on the
local Dovecot, the local CA as ``ca_file``), the outgoing connection to the local SMTP sink
(STARTTLS, same CA), the addresses, and the console's first admin ``admin`` with a random
password that the ready block prints this once (nowhere is it stored but as its hash;
``mailroom users reset-password admin`` sets another). Later starts change nothing an
operator may have edited; they only move the account and the connection to the servers' new
ports, as long as they still point at 127.0.0.1 (the local servers get fresh ports on every
start).
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCOUNT = "local"
DONE_FILE = "preset.done"
LOCAL_HOST = "127.0.0.1"
ADMIN_ADDRESS = "admin@example.org"
CONSOLE_ADMIN = "admin"


@dataclass(frozen=True)
class Applied:
    """What the preset did: ``changes`` to say, and the first admin's password when it
    created that user (to be shown once)."""

    changes: list[str]
    admin_password: str | None = None


@dataclass(frozen=True)
class LocalServers:
    """What the preset points at: the local mailbox and SMTP sink."""

    imap_port: int
    smtp_port: int
    ca_file: Path
    address: str
    username: str
    password: str


class Api:
    """A minimal client of the config API (stdlib only: ``make run`` needs no test extras)."""

    def __init__(self, base_url: str, token: str) -> None:
        self._base, self._token = base_url.rstrip("/"), token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request; None for 404, the JSON body otherwise; raise on other errors."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (our own http://127.0.0.1 URL)
            self._base + path, data=data, method=method
        )
        request.add_header("Authorization", f"Bearer {self._token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            detail = exc.read().decode(errors="replace")[:500]
            raise RuntimeError(f"{method} {path} answered {exc.code}: {detail}") from None


def apply(api: Api, servers: LocalServers, state_dir: Path) -> Applied:
    """Configure (first start) or re-point (later starts) the local default; say what changed."""
    done = state_dir / DONE_FILE
    if not done.exists():
        changes = _first_start(api, servers)
        password = _first_admin(api)
        done.write_text("the local default was configured; `make reset` starts afresh\n")
        return Applied(changes, password)
    return Applied(_follow_ports(api, servers))


def _first_admin(api: Api) -> str | None:
    """Create the console's first admin when there is no user yet; its password."""
    if api.call("GET", "/users"):
        return None
    password = secrets.token_urlsafe(18)
    api.call("POST", "/users", {"name": CONSOLE_ADMIN, "role": "admin", "password": password})
    return password


def _first_start(api: Api, servers: LocalServers) -> list[str]:
    changes = []
    if api.call("GET", f"/accounts/{ACCOUNT}") is None:
        api.call(
            "POST",
            "/accounts",
            {
                "name": ACCOUNT,
                "protocol": "IMAP",
                "security": "STARTTLS",
                "host": LOCAL_HOST,
                "port": servers.imap_port,
                "username": servers.username,
                "password": servers.password,
                "ca_file": str(servers.ca_file),
            },
        )
        changes.append(f"incoming account {ACCOUNT!r}: {servers.address} on the local Dovecot")
    api.call(
        "PUT",
        "/outgoing",
        {
            "host": LOCAL_HOST,
            "port": servers.smtp_port,
            "security": "starttls",
            "username": servers.username,
            "password": servers.password,
            "ca_file": str(servers.ca_file),
        },
    )
    changes.append("outgoing connection: the local SMTP sink")
    support = {"name": "Support (local)", "address": servers.address}
    api.call(
        "PATCH",
        "/settings/addresses",
        {
            "from_address": support,
            "reply_to": support,
            "notification_recipients": [{"name": "Admin (local)", "address": ADMIN_ADDRESS}],
        },
    )
    changes.append(f"addresses: from and reply-to {servers.address}, notifications {ADMIN_ADDRESS}")
    return changes


def _follow_ports(api: Api, servers: LocalServers) -> list[str]:
    changes = []
    account = api.call("GET", f"/accounts/{ACCOUNT}")
    if account and account["host"] == LOCAL_HOST and account["port"] != servers.imap_port:
        api.call("PATCH", f"/accounts/{ACCOUNT}", {"port": servers.imap_port})
        changes.append(f"incoming account {ACCOUNT!r}: local Dovecot now on {servers.imap_port}")
    outgoing = api.call("GET", "/outgoing")
    if outgoing and outgoing["host"] == LOCAL_HOST and outgoing["port"] != servers.smtp_port:
        api.call("PUT", "/outgoing", {"port": servers.smtp_port})
        changes.append(f"outgoing connection: local SMTP sink now on {servers.smtp_port}")
    return changes
