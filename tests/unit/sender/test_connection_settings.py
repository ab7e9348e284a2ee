"""The outgoing connection's typed settings: ports by security mode, OAuth 2.0 completeness,
TLS for tokens, and "the same credentials as incoming account X"."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.sender.deps import SenderSettings
from services.sender.smtp import effective_connection
from shared.config_views import build_config
from shared.errors import ConfigRejected
from shared.models.config import (
    MAX_SMTP_CONCURRENCY,
    IncomingAccount,
    OutgoingConnection,
    SystemConfig,
)
from shared.models.records import Property
from shared.secrets import SecretBox

OAUTH: dict[str, Any] = {
    "auth": "oauth2",
    "username": "support@example.org",
    "client_id": "app",
    "client_secret": "s3cret",
    "authority": "https://login.example.org/tenant",
    "scope": "https://outlook.office365.com/.default",
}


@pytest.mark.parametrize(("security", "port"), [("none", 25), ("starttls", 587), ("tls", 465)])
def test_the_port_defaults_by_security(security: str, port: int) -> None:
    assert OutgoingConnection(host="smtp", security=security).effective_port == port


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({**OAUTH, "scope": None}, "auth oauth2 needs scope"),
        ({**OAUTH, "authority": "http://login.example.org/t"}, "must be an https:// URL"),
        ({**OAUTH, "security": "none"}, "only sent over TLS"),
        ({"credentials_from": "support", "username": "x"}, "leave username unset"),
    ],
)
def test_incomplete_or_unsafe_auth_is_refused(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        OutgoingConnection.model_validate({"host": "smtp", **fields})


def test_credentials_from_takes_the_accounts_credentials() -> None:
    account = IncomingAccount.model_validate({"name": "support", "host": "imap", **OAUTH})
    config = SystemConfig(
        accounts={"support": account},
        outgoing=OutgoingConnection(host="smtp", credentials_from="support"),
    )
    conn = effective_connection(config)
    assert conn is not None and conn.host == "smtp" and conn.auth == "oauth2"
    assert conn.username == "support@example.org" and conn.client_id == "app"


def test_credentials_from_an_unknown_account_is_rejected_with_the_reason() -> None:
    prop = Property(module="outgoing", key="smtp", value={"host": "smtp", "credentials_from": "x"})
    with pytest.raises(ConfigRejected, match="incoming account 'x', which does not exist"):
        build_config([prop], box=SecretBox(None), version=1)


@pytest.mark.parametrize("concurrency", [0, MAX_SMTP_CONCURRENCY + 1])
def test_concurrency_outside_its_bounds_is_refused_naming_them(concurrency: int) -> None:
    with pytest.raises(ValidationError, match="concurrency") as refused:
        OutgoingConnection(host="smtp", concurrency=concurrency)
    assert f"{1 if concurrency == 0 else MAX_SMTP_CONCURRENCY}" in str(refused.value)


def test_the_sender_prefetches_enough_mails_to_use_every_connection() -> None:
    assert OutgoingConnection(host="smtp").concurrency == 1
    assert SenderSettings().prefetch >= MAX_SMTP_CONCURRENCY
