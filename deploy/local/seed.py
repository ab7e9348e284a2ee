"""A little data for a console to show: an incoming account, two OAuth 2.0 credentials (an
app-only one whose client secret expires soon, a device-code one awaiting consent), the
outgoing connection to an SMTP sink, a case with its acknowledgement in the outbox, and a
failed mail on the desk.

Configuration goes through the HTTP API (the surface that stays put while the service
functions behind it change); the two mails are stored and announced as the fetcher would,
and the running processor and sender of the stack do the rest. Used by ``make screenshots``
and the browser tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TypeVar

import httpx

from shared.broker import publish
from shared.models.messages import MailReceived
from shared.models.records import RawEmail
from shared.runtime import Runtime
from shared.topology import MAIL_RECEIVED

T = TypeVar("T")

ACCOUNT = "support"
ACCOUNT_PASSWORD = "seeded-account-password"  # noqa: S105 - the account is never fetched from
CREDENTIAL = "m365-helpdesk"
CREDENTIAL_SECRET = "seeded-client-secret-0123456789"  # noqa: S105 - never sent to an issuer
SECRET_DAYS_LEFT = 10
"""The seeded app-only credential's client secret expires this many days after seeding:
within the warning days, so its pages show the warning."""
SPAM = "You have won the lottery"
REJECT_PATTERN = r"(?i)\blottery\b"
"""The subject the seeded ``reject_subject`` script sends to the desk."""


@dataclass(frozen=True)
class SmtpTarget:
    """Where the seeded outgoing connection sends: an SMTP server with STARTTLS and AUTH."""

    port: int
    username: str
    password: str
    ca_file: Path


@dataclass(frozen=True)
class Seeded:
    """What was seeded, by the ids a detail page's URL takes."""

    account: str
    credential: str
    case: int
    failed: str
    outbox: str

    def ids(self) -> dict[str, str]:
        """The ids by name, for ``str.format`` on a path template."""
        return {
            "account": self.account,
            "credential": self.credential,
            "case": str(self.case),
            "failed": self.failed,
            "outbox": self.outbox,
        }


async def _ok(response: httpx.Response) -> object:
    if response.status_code >= 300:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json()


async def _eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while (result := await probe()) is None or not result:
        if time.monotonic() > deadline:
            raise RuntimeError(f"seeding: timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)
    return result


def customer_mail(subject: str, sender: str) -> bytes:
    """A plain customer mail to the support address, CRLF line endings."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "Support <support@example.org>"
    msg["Subject"] = subject
    msg["Date"] = formatdate()
    msg["Message-ID"] = make_msgid(domain="example.net")
    msg.set_content("Hello,\n\nthe printer on floor 3 shows error E-104 again.\n\nRegards\n")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


async def announce(rt: Runtime, data: bytes, *, account: str = ACCOUNT) -> str:
    """Store ``data`` as if the fetcher had taken it from ``account`` and announce it on
    ``mail.received``; returns the raw mail's id."""
    digest = hashlib.sha256(data).hexdigest()
    record = RawEmail(
        account=account, source_key=f"seed:{digest[:16]}", folder="INBOX", size=len(data),
        sha256=digest,
    )  # fmt: skip
    stored, _ = await rt.store.raw_emails.insert(record=record, data=data)
    body = MailReceived(raw_id=stored.id, account=account, source_key=record.source_key)
    await publish(rt.broker, body, routing_key=MAIL_RECEIVED)
    return stored.id


async def configure(api: httpx.AsyncClient, smtp: SmtpTarget) -> None:
    """The account, addresses, outgoing connection and the spam rule, through the API."""
    await _ok(
        await api.patch(
            "/settings/addresses",
            json={"from_address": {"name": "Support", "address": "support@example.org"}},
        )
    )
    await _ok(
        await api.put(
            "/outgoing",
            json={
                "host": "127.0.0.1",
                "port": smtp.port,
                "security": "starttls",
                "username": smtp.username,
                "password": smtp.password,
                "ca_file": str(smtp.ca_file),
            },
        )
    )
    await _ok(
        await api.post(
            "/accounts",
            json={
                "name": ACCOUNT,
                "protocol": "IMAPS",
                "host": "imap.example.org",
                "username": "support@example.org",
                "password": ACCOUNT_PASSWORD,
                "enabled": False,
            },
        )
    )
    await configure_credentials(api)
    spam_rule = {"reject_subject_pattern": REJECT_PATTERN}
    await _ok(await api.patch("/settings/processor", json=spam_rule))
    await _ok(await api.post("/scripts/incoming/reject_subject/enable"))


async def configure_credentials(api: httpx.AsyncClient) -> None:
    """A device-code credential waiting for consent and an app-only one whose client secret
    expires within the warning days, through the API."""
    authority = "https://login.microsoftonline.com/contoso.onmicrosoft.com"
    await _ok(
        await api.post(
            "/credentials",
            json={
                "name": CREDENTIAL,
                "flow": "device_code",
                "client_id": "0b7e4c1a-5f0e-4c7e-9d43-3c1f8f0a2b11",
                "authority": authority,
            },
        )
    )
    expires = date.today() + timedelta(days=SECRET_DAYS_LEFT)
    await _ok(
        await api.post(
            "/credentials",
            json={
                "name": "m365-app",
                "client_id": "6a1d2e3f-4b5c-4d6e-8f70-81a2b3c4d5e6",
                "client_secret": CREDENTIAL_SECRET,
                "client_secret_expires": expires.isoformat(),
                "authority": authority,
            },
        )
    )


async def seed(rt: Runtime, api: httpx.AsyncClient, smtp: SmtpTarget) -> Seeded:
    """Seed a console whose stack runs the config service, the processor and the sender;
    ``api`` is an admin client of its API. Returns once the case's acknowledgement is in the
    outbox and the spam mail is on the desk."""
    await configure(api, smtp)
    ours = await announce(
        rt, customer_mail("Printer on floor 3 is broken", "Carol Customer <carol@example.net>")
    )
    await announce(rt, customer_mail(SPAM, "Prize Office <winner@example.com>"))

    async def case() -> int | None:
        found = [c.number for c in await rt.store.cases.recent() if c.origin_raw_id == ours]
        return found[0] if found else None

    async def failed() -> str | None:
        listed = await _ok(await api.get("/failed"))
        return str(listed[0]["id"]) if isinstance(listed, list) and listed else None

    number = await _eventually(case, "the seeded case", 60)

    async def sent() -> str | None:
        entries = await rt.store.outbox.recent(case_number=number)
        return next((e.id for e in entries if e.status == "sent"), None)

    return Seeded(
        account=ACCOUNT,
        credential=CREDENTIAL,
        case=number,
        failed=await _eventually(failed, "the seeded failed mail on the desk", 60),
        outbox=await _eventually(sent, "the acknowledgement sent (outbox)", 60),
    )
