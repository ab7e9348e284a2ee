"""Credential health judged from a credential and its state (pure): each condition, when
it starts, and the status it gives."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from deploy.local.oauth_grants import app_certificate
from shared.credential_health import assess
from shared.models.credentials import Credential, CredentialState

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
AUTHORITY = "https://login.microsoftonline.com/contoso.onmicrosoft.com"


def credential(**fields: Any) -> Credential:
    values: dict[str, Any] = {
        "name": "m365",
        "client_id": "app",
        "client_secret": "s3cret-value",
        "authority": AUTHORITY,
    }
    return Credential.model_validate(values | fields)


def kinds(cred: Credential, state: CredentialState, days: int = 14) -> list[str]:
    return [c.kind for c in assess(cred, state, now=NOW, warning_days=days).conditions]


def test_a_healthy_credential_has_no_condition() -> None:
    state = CredentialState(name="m365", last_token_at=NOW, token_expires_at=NOW + timedelta(1))
    report = assess(credential(), state, now=NOW, warning_days=14)
    assert report.status == "ok" and report.conditions == []


@pytest.mark.parametrize(("days_left", "warned"), [(15, False), (14, True), (1, True)])
def test_the_client_secret_warns_from_the_warning_days(days_left: int, warned: bool) -> None:
    cred = credential(client_secret_expires=(NOW + timedelta(days=days_left)).date())
    assert kinds(cred, CredentialState(name="m365")) == (
        ["client_secret_expiring"] if warned else []
    )


def test_an_expired_secret_fails_and_a_refused_token_fails() -> None:
    cred = credential(client_secret_expires=date(2026, 12, 1))
    assert assess(cred, CredentialState(name="m365"), now=NOW, warning_days=14).status == (
        "failing"
    )
    refused = CredentialState(
        name="m365",
        last_token_at=NOW - timedelta(hours=2),
        last_error="invalid_grant AADSTS",
        last_error_at=NOW - timedelta(hours=1),
    )
    report = assess(credential(), refused, now=NOW, warning_days=14)
    assert report.status == "failing" and [c.kind for c in report.conditions] == ["token_refused"]
    assert "invalid_grant AADSTS" in report.conditions[0].text


def test_an_unused_microsoft_refresh_token_warns_before_it_lapses() -> None:
    delegated = credential(flow="authorization_code", redirect_uri="https://m/oauth/callback")
    fresh = CredentialState(name="m365", refresh_token_at=NOW - timedelta(days=10))
    old = CredentialState(name="m365", refresh_token_at=NOW - timedelta(days=80))
    assert kinds(delegated, fresh) == []
    assert kinds(delegated, old) == ["refresh_token_expiring"]


def test_the_certificate_warns_before_it_expires() -> None:
    pem, _ = app_certificate(days=5)
    cert = credential(client_secret=None, certificate=pem)
    report = assess(cert, CredentialState(name="m365"), now=datetime.now(UTC), warning_days=14)
    assert [c.kind for c in report.conditions] == ["certificate_expiring"]
    assert report.certificate_expires is not None


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"provider": "google", "flow": "device_code"}, "not offered by google"),
        ({"flow": "service_account"}, "not offered by microsoft"),
        ({"client_secret": None}, r"needs client_secret \(or certificate\)"),
        ({"authority": None}, "needs authority"),
        ({"authority": "http://issuer"}, "https://"),
        ({"flow": "authorization_code"}, "needs redirect_uri"),
        ({"certificate": "not a pem"}, "not both"),
        ({"client_secret": None, "certificate": "junk"}, "PEM holding the certificate"),
        ({"name": "has space"}, "credential name"),
    ],
)
def test_a_credential_that_cannot_work_is_refused(fields: dict[str, Any], refusal: str) -> None:
    with pytest.raises(ValidationError, match=refusal):
        credential(**fields)


def test_delegated_microsoft_credentials_ask_for_the_mail_scopes() -> None:
    delegated = credential(flow="device_code", client_secret=None)
    assert delegated.effective_scopes == [
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    ]
    assert credential().effective_scopes == ["https://outlook.office365.com/.default"]
