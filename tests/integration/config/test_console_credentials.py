"""The console's Credentials pages as a person uses them, on the real config service and the
local OAuth issuer: list, add, edit (secrets write-only), delete refused while an account uses
the credential, device-code consent followed on the page, and a viewer who reads only."""

from __future__ import annotations

import contextlib
import re
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from deploy.local.oauth_grants import app_certificate
from deploy.local.oauth_issuer import OAuthIssuer
from services.config.properties import put_account
from services.config.users import add_user
from shared.models.users import Role
from shared.service import Stack
from tests.secret_scan import SCAN
from tests.support import console_client, eventually, sign_in

pytestmark = pytest.mark.integration

PASSWORD = SCAN.secret("password of a console user", "console-cred-password-0123")
SECRET = SCAN.secret("a credential's client secret", "console-client-secret-0123456789")
NEW_SECRET = SCAN.secret("a credential's client secret", "console-client-secret-renewed-42")
AUTHORITY = "https://login.microsoftonline.com/contoso.onmicrosoft.com"


@contextlib.asynccontextmanager
async def signed_in(stack: Stack, role: Role) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A console client signed in as a new user ``role`` with that role, and its CSRF token."""
    await add_user(stack.rt, name=role, role=role, password=PASSWORD, who="test")
    async with console_client(stack) as client:
        yield client, await sign_in(client, role, PASSWORD)


def app_form(csrf: str, secret: str, **extra: str) -> dict[str, str]:
    """The new-credential form for a Microsoft app-only registration."""
    return {
        "csrf_token": csrf,
        "saved": "",
        "name": "m365-app",
        "provider": "microsoft",
        "flow": "client_credentials",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": secret,
        "client_secret_expires": "2027-01-31",
        "authority": AUTHORITY,
        "scopes": "",
        "ca_file": "",
        **extra,
    }


async def test_a_credential_is_added_edited_listed_and_kept_while_used(
    config_stack: Stack,
) -> None:
    rt = config_stack.rt
    async with signed_in(config_stack, "admin") as (browser, csrf):
        empty = await browser.get("/console/email/credentials")
        assert empty.status_code == 200 and "No credential yet" in empty.text
        assert 'href="/console/email/credentials" aria-current="page"' in empty.text

        form = await browser.get("/console/email/new-credential")
        assert 'name="client_secret"' in form.text and 'name="service_account_key"' not in form.text
        google = await browser.post(
            "/console/email/credential-draft",
            data={**app_form(csrf, ""), "provider": "google", "flow": "service_account"},
        )
        assert 'name="service_account_key"' in google.text
        assert 'name="client_secret"' not in google.text

        missing = await browser.post(
            "/console/email/new-credential", data=app_form(csrf, "", authority="")
        )
        assert missing.status_code == 422 and "needs client_secret" in missing.text
        # A refused form comes back without the secret typed into it (the scan checks too).
        refused = await browser.post(
            "/console/email/new-credential", data=app_form(csrf, SECRET, authority="")
        )
        assert refused.status_code == 422 and "needs authority" in refused.text
        assert SECRET not in refused.text
        added = await browser.post("/console/email/new-credential", data=app_form(csrf, SECRET))
        assert added.status_code == 303, added.text
        assert added.headers["location"] == "/console/email/credentials/m365-app"
        taken = await browser.post("/console/email/new-credential", data=app_form(csrf, SECRET))
        assert taken.status_code == 409 and "already exists" in taken.text

        page = await browser.get("/console/email/credentials/m365-app")
        assert ">set<" in page.text and "Replace" in page.text and "Authorize" not in page.text
        # An empty secret keeps the stored one; a typed one replaces it.
        kept = await browser.post(
            "/console/email/credentials/m365-app",
            data=app_form(csrf, "", saved="m365-app", client_secret_expires="2026-12-20"),
        )
        assert kept.status_code == 303, kept.text
        stored = await rt.credentials.get(name="m365-app")
        assert stored.client_secret is not None
        assert stored.client_secret.get_secret_value() == SECRET
        assert str(stored.client_secret_expires) == "2026-12-20"
        renewed = await browser.post(
            "/console/email/credentials/m365-app", data=app_form(csrf, NEW_SECRET, saved="m365-app")
        )
        assert renewed.status_code == 303
        stored = await rt.credentials.get(name="m365-app")
        assert stored.client_secret is not None
        assert stored.client_secret.get_secret_value() == NEW_SECRET
        # Every change is audited with who made it and which fields, never their values.
        history = await rt.credentials.history(name="m365-app")
        assert [(e.action, e.who) for e in history] == [
            ("changed", "admin"),
            ("changed", "admin"),
            ("added", "admin"),
        ]
        assert history[0].fields == ["client_secret", "client_secret_expires"]
        assert history[1].fields == ["client_secret_expires"]
        audit = (await browser.get("/console/email/credentials/m365-app")).text
        assert "Changes (newest first)" in audit and "client_secret, client_secret_expires" in audit

        await put_account(
            rt,
            name="helpdesk",
            fields={
                "protocol": "IMAPS",
                "host": "outlook.office365.com",
                "username": "helpdesk@contoso.com",
                "auth": "oauth2",
                "credential": "m365-app",
            },
            who="test",
            create=True,
        )
        soon = await browser.post(
            "/console/email/credentials/m365-app",
            data=app_form(csrf, "", saved="m365-app", client_secret_expires="2020-01-31"),
        )
        assert soon.status_code == 303
        listing = (await browser.get("/console/email/credentials")).text
        row = listing.split('href="/console/email/credentials/m365-app"', 1)[1].split("</tr>")[0]
        for shown in ("client credentials", "not needed", "failing", "expires on 2020-01-31"):
            assert shown in row, shown
        assert 'href="/console/email/accounts/helpdesk"' in row
        account = (await browser.get("/console/email/accounts/helpdesk")).text
        assert 'href="/console/email/credentials/m365-app"' in account

        confirm = await browser.get("/console/email/credentials/m365-app/delete")
        assert "cannot be deleted" in confirm.text and "helpdesk" in confirm.text
        refused = await browser.post(
            "/console/email/credentials/m365-app/delete", data={"csrf_token": csrf}
        )
        after = await browser.get(refused.headers["location"])
        assert "Not deleted" in after.text and "incoming:helpdesk" in after.text
        await rt.credentials.get(name="m365-app")

        await browser.post("/console/email/accounts/helpdesk/delete", data={"csrf_token": csrf})
        deleted = await browser.post(
            "/console/email/credentials/m365-app/delete", data={"csrf_token": csrf}
        )
        assert deleted.headers["location"] == "/console/email/credentials"
        assert (await rt.credentials.history(name="m365-app"))[0].action == "deleted"
        assert "No credential yet" in (await browser.get("/console/email/credentials")).text


async def test_a_certificate_is_pasted_whole_and_its_expiry_warned(config_stack: Stack) -> None:
    pem, _ = app_certificate(days=5)
    SCAN.secret("a credential's certificate and private key", pem)
    async with signed_in(config_stack, "admin") as (browser, csrf):
        form = app_form(csrf, "", name="m365-cert", client_secret_expires="")
        page = await browser.post("/console/email/credential-draft", data=form)
        # A password input would drop the PEM's line breaks.
        assert '<textarea id="f-certificate"' in page.text
        added = await browser.post(
            "/console/email/new-credential", data={**form, "certificate": pem}
        )
        assert added.status_code == 303, added.text
        stored = await config_stack.rt.credentials.get(name="m365-cert")
        assert stored.certificate is not None and stored.certificate.get_secret_value() == pem
        shown = (await browser.get("/console/email/credentials/m365-cert")).text
        assert "certificate expiring" in shown and "Certificate expires" in shown
        listing = (await browser.get("/console/email/credentials")).text
        assert ">warning<" in listing and "Certificate" in listing


async def test_a_viewer_reads_credentials_and_changes_nothing(config_stack: Stack) -> None:
    async with signed_in(config_stack, "admin") as (browser, csrf):
        added = await browser.post("/console/email/new-credential", data=app_form(csrf, SECRET))
        assert added.status_code == 303
    async with signed_in(config_stack, "viewer") as (browser, csrf):
        listing = await browser.get("/console/email/credentials")
        assert "m365-app" in listing.text and "New credential" not in listing.text
        page = await browser.get("/console/email/credentials/m365-app")
        assert page.status_code == 200
        for action in ('id="credential-form"', "Delete…", "/authorize"):
            assert action not in page.text, action
        assert ">set<" in page.text and "11111111-2222" in page.text
        for url, data in (
            ("/console/email/new-credential", app_form(csrf, SECRET, name="other")),
            ("/console/email/credentials/m365-app", app_form(csrf, "", saved="m365-app")),
            ("/console/email/credentials/m365-app/delete", {"csrf_token": csrf}),
            ("/console/email/credentials/m365-app/authorize", {"csrf_token": csrf}),
        ):
            refused = await browser.post(url, data=data)
            assert refused.status_code == 403, url
        assert (await browser.get("/console/email/new-credential")).status_code == 403
    await config_stack.rt.credentials.get(name="m365-app")


async def test_device_code_consent_is_followed_on_the_page(
    config_stack: Stack, oauth_issuer: OAuthIssuer
) -> None:
    oauth_issuer.add_client("console-device", None, "alice")
    async with signed_in(config_stack, "admin") as (browser, csrf):
        form = {
            "csrf_token": csrf,
            "saved": "",
            "name": "device",
            "provider": "microsoft",
            "flow": "device_code",
            "client_id": "console-device",
            "authority": oauth_issuer.authority(),
            "ca_file": str(oauth_issuer.ca_file),
        }
        added = await browser.post("/console/email/new-credential", data=form)
        assert added.status_code == 303, added.text
        page = await browser.get("/console/email/credentials/device")
        assert "Authorize" in page.text and ">pending<" in page.text

        started = await browser.post(
            "/console/email/credentials/device/authorize", data={"csrf_token": csrf}
        )
        assert started.status_code == 200, started.text
        assert "/devicelogin" in started.text and 'hx-trigger="every 2s"' in started.text
        code = started.text.split('user-code">', 1)[1].split("<", 1)[0].strip()
        audited = await config_stack.rt.credentials.history(name="device")
        assert (audited[0].action, audited[0].who) == ("authorize", "admin")
        oauth_issuer.approve_device(code)  # the user signs in with the code

        async def granted() -> str | None:
            answer = await browser.get("/console/email/credentials/device/consent")
            return answer.text if "Consent granted" in answer.text else None

        fragment = await eventually(granted, what="the consent shown as granted")
        assert "alice" in fragment and "hx-trigger" not in fragment
        listing = (await browser.get("/console/email/credentials")).text
        assert ">granted<" in listing
    for refresh in list(oauth_issuer.grants.refresh):
        SCAN.secret("an OAuth 2.0 refresh token", refresh)
    for token in list(oauth_issuer.tokens):
        SCAN.secret("an OAuth 2.0 access token", token)


async def test_the_browser_flow_sends_the_admin_to_the_provider_and_back(
    config_stack: Stack, oauth_issuer: OAuthIssuer
) -> None:
    oauth_issuer.add_client("console-code", SECRET, "alice")
    callback = "http://config/oauth/callback"
    async with signed_in(config_stack, "admin") as (browser, csrf):
        form = {
            **app_form(csrf, SECRET, name="code"),
            "flow": "authorization_code",
            "client_id": "console-code",
            "authority": oauth_issuer.authority(),
            "ca_file": str(oauth_issuer.ca_file),
            "redirect_uri": callback,
            "client_secret_expires": "",
        }
        added = await browser.post("/console/email/new-credential", data=form)
        assert added.status_code == 303, added.text
        started = await browser.post(
            "/console/email/credentials/code/authorize", data={"csrf_token": csrf}
        )
        assert started.status_code == 303
        assert started.headers["location"].startswith(oauth_issuer.authority())
        trust = ssl.create_default_context(cafile=str(oauth_issuer.ca_file))
        async with httpx.AsyncClient(verify=trust) as provider:
            consent = await provider.get(started.headers["location"])
        # Microsoft answers with a page that posts the code to the redirect URI at once.
        assert re.search(r'action="([^"]+)"', consent.text)[1] == callback  # type: ignore[index]
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', consent.text))
        back = await browser.post("/oauth/callback", data=fields, headers={"Accept": "text/html"})
        assert back.status_code == 303
        assert back.headers["location"] == "/console/email/credentials/code"
        page = (await browser.get(back.headers["location"])).text
        assert ">granted<" in page
    for refresh in list(oauth_issuer.grants.refresh):
        SCAN.secret("an OAuth 2.0 refresh token", refresh)
    for token in list(oauth_issuer.tokens):
        SCAN.secret("an OAuth 2.0 access token", token)
