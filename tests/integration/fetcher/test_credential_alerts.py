"""Credential health with alerts, with the config service and the fetcher running: a client
secret about to expire is mailed to the administrators once per day (however often it is
checked), the gauge of seconds to expiry says how long is left, ``/healthz/credentials`` and
the account's health show it; a credential whose secret was revoked at the issuer alerts at
once, marks its account's health failing, and the two healthy accounts beside it keep fetching
as fast as without it."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from deploy.local.servers import Dovecot, OAuthIssuer
from services.config.service import build as config_service
from services.fetcher.service import build as fetcher_service
from shared.credential_health import check_credentials
from shared.models.messages import OutgoingMail
from shared.service import Stack
from shared.topology import SENDER_OUTBOUND
from tests.integration.fetcher.helpers import announced, append, tricky_mail
from tests.secret_scan import SCAN
from tests.support import API_TOKEN, api_client, eventually, server_settings

pytestmark = pytest.mark.integration

SECRET = SCAN.secret("a credential's client secret", "alert-client-secret-0123456789")
ROTATED = SCAN.secret("a credential's client secret", "alert-rotated-secret-0123456789")
ADMIN = {"name": "Admin", "address": "admin@example.org"}


@pytest.fixture
async def stack(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> AsyncIterator[Stack]:
    """Config service and fetcher in one process, as ``mailroom run all`` without a sender:
    alert mails wait in ``sender.outbound``."""
    settings = server_settings(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, instance="alerts"
    )
    running = Stack([config_service, fetcher_service], settings)
    await running.start()
    await alerts(running)  # the session's tests share one vhost
    yield running
    await running.stop()


async def alerts(stack: Stack) -> list[OutgoingMail]:
    """Take every mail waiting for the sender."""
    queue = await stack.rt.broker.declare_queue(SENDER_OUTBOUND)
    found = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        found.append(OutgoingMail.model_validate_json(message.body))
    return found


async def setup(api: httpx.AsyncClient, stack: Stack, **settings: Any) -> None:
    for key, value in {"notification_recipients": [ADMIN]}.items():
        await stack.rt.store.properties.put(module="addresses", key=key, value=value, who="t")
    for key, value in settings.items():
        await stack.rt.store.properties.put(module="settings", key=key, value=value, who="t")
    await stack.rt.reload_config()


def gauge(metrics_text: str, credential: str, kind: str) -> float:
    pattern = (
        rf'mailroom_credential_expiry_seconds{{credential="{credential}",kind="{kind}"}} (\S+)'
    )
    found = re.search(pattern, metrics_text)
    assert found, f"no gauge for {credential}/{kind}"
    return float(found[1])


async def test_an_expiring_secret_is_mailed_once_a_day_with_gauge_and_health(
    stack: Stack, dovecot: Dovecot
) -> None:
    # A month ahead: the config service's own minute-by-minute check (at the real time)
    # sees the secret far from expiry and mails nothing of its own.
    day1 = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=30)
    expires = (day1 + timedelta(days=5)).date()
    d1, d2 = day1.date().isoformat(), (day1 + timedelta(days=1)).date().isoformat()
    async with api_client(stack, API_TOKEN) as api:
        await setup(api, stack)
        created = await api.post(
            "/credentials",
            json={
                "name": "expiring",
                "client_id": "expiring-app",
                "client_secret": SECRET,
                "client_secret_expires": expires.isoformat(),
                "authority": "https://login.microsoftonline.com/contoso.onmicrosoft.com",
            },
        )
        assert created.status_code == 201, created.text
        account = {
            "name": "m365-box",
            "protocol": "IMAPS",
            "host": "127.0.0.1",
            "port": dovecot.imaps_port,
            "username": "bob",
            "auth": "oauth2",
            "credential": "expiring",
            "enabled": False,
        }
        assert (await api.post("/accounts", json=account)).status_code == 201

        for hour in (0, 1, 5):  # checked all day long: one mail
            await check_credentials(stack.rt, now=day1 + timedelta(hours=hour))
        first = await alerts(stack)
        assert [m.mail_id for m in first] == [f"credential-expiring-client_secret_expiring-{d1}"]
        assert [str(a.address) for a in first[0].to] == ["admin@example.org"]
        assert f"expires on {expires.isoformat()}" in first[0].text
        assert SECRET not in first[0].text

        await check_credentials(stack.rt, now=day1 + timedelta(days=1))
        await check_credentials(stack.rt, now=day1 + timedelta(days=1, hours=2))
        second = await alerts(stack)
        assert [m.mail_id for m in second] == [f"credential-expiring-client_secret_expiring-{d2}"]

        await check_credentials(stack.rt, now=day1)
        metrics = (await api.get("/metrics")).text
        left = datetime(expires.year, expires.month, expires.day, tzinfo=UTC) - day1
        assert gauge(metrics, "expiring", "client_secret") == left.total_seconds()

        # Now (the real time) three days before the secret expires:
        soon = (datetime.now(UTC) + timedelta(days=3)).date()
        changed = await api.patch(
            "/credentials/expiring", json={"client_secret_expires": soon.isoformat()}
        )
        assert changed.status_code == 200, changed.text
        detail = (await api.get("/healthz/credentials")).json()
        assert [(c["name"], c["status"]) for c in detail] == [("expiring", "warning")]
        assert [c["kind"] for c in detail[0]["conditions"]] == ["client_secret_expiring"]

        health = (await api.get("/accounts/m365-box/health")).json()
        assert health["credential"] == "expiring" and health["credential_status"] == "warning"
        assert f"expires on {soon.isoformat()}" in health["credential_problems"][0]


async def test_a_revoked_credential_alerts_at_once_and_delays_no_other_account(
    stack: Stack, dovecot: Dovecot, oauth_issuer: OAuthIssuer
) -> None:
    oauth_issuer.add_client("revoked-app", SECRET, "bob")
    async with api_client(stack, API_TOKEN) as api:
        await setup(api, stack, poll_interval_seconds=0.2)
        created = await api.post(
            "/credentials",
            json={
                "name": "revoked",
                "client_id": "revoked-app",
                "client_secret": SECRET,
                "authority": oauth_issuer.authority(),
                "ca_file": str(oauth_issuer.ca_file),
            },
        )
        assert created.status_code == 201, created.text
        # The secret is rotated in the app registration; Mailroom still has the old one.
        oauth_issuer.add_client("revoked-app", ROTATED, "bob")
        dovecot.reset_mailbox("alice")
        dovecot.reset_mailbox("bob")
        boxes = {
            "healthy-alice": {"protocol": "IMAPS", "port": dovecot.imaps_port, "user": "alice"},
            "healthy-bob": {"protocol": "IMAP", "port": dovecot.imap_port, "user": "bob"},
        }
        for name, box in boxes.items():
            body = {
                "name": name,
                "protocol": box["protocol"],
                "host": "127.0.0.1",
                "port": box["port"],
                "username": box["user"],
                "password": f"{box['user']}pw",
                "ca_file": str(dovecot.cert_file),
            }
            assert (await api.post("/accounts", json=body)).status_code == 201
        revoked = {
            "name": "revoked-box",
            "protocol": "IMAPS",
            "host": "127.0.0.1",
            "port": dovecot.imaps_port,
            "username": "bob",
            "ca_file": str(dovecot.cert_file),
            "auth": "oauth2",
            "credential": "revoked",
        }
        assert (await api.post("/accounts", json=revoked)).status_code == 201

        async def refused() -> dict[str, Any] | None:
            body = (await api.get("/accounts/revoked-box/health")).json()
            return body if body["credential_status"] == "failing" else None

        failing = await eventually(refused, what="the revoked credential failing")
        assert "invalid_client" in failing["credential_problems"][0]

        # The healthy accounts fetch new mail as fast as ever, beside the failing one.
        await announced(stack.rt)
        start = time.monotonic()
        for box in boxes.values():
            append(dovecot, str(box["user"]), tricky_mail(1))
        seen: list[str] = []

        async def both() -> bool | None:
            seen.extend(m.account for m in await announced(stack.rt))
            return True if sorted(seen) == sorted(boxes) else None

        await eventually(both, what="both healthy accounts announcing their mail")
        assert time.monotonic() - start < 5.0

    mails = await alerts(stack)
    today = datetime.now(UTC).date().isoformat()
    assert [m.mail_id for m in mails] == [f"credential-revoked-token_refused-{today}"]
    assert "AADSTS7000215" in mails[0].text and SECRET not in mails[0].text
