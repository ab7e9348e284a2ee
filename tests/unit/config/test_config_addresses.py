"""The Addresses tab: From against the allowed list, and who gets technical notifications."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.sender.notifications import fetch_error_mail
from shared.models.config import Addresses, SystemConfig
from shared.models.messages import AccountFailing, MailAddress


def _person(address: str) -> MailAddress:
    return MailAddress(address=address)


def test_from_must_be_one_of_the_allowed_addresses_ignoring_case() -> None:
    with pytest.raises(ValidationError, match="not in allowed_from"):
        Addresses(from_address=_person("sales@example.com"), allowed_from=("help@example.com",))
    ok = Addresses(from_address=_person("Help@Example.com"), allowed_from=("help@example.com",))
    assert ok.from_allowed("HELP@example.com") and not ok.from_allowed("x@example.com")


def test_fetch_errors_go_to_administrators_and_notification_recipients_once_each() -> None:
    addresses = Addresses(
        administrators=(_person("admin@example.com"), _person("ops@example.com")),
        notification_recipients=(_person("OPS@example.com"), _person("team@example.com")),
    )
    event = AccountFailing.model_validate(
        {"account": "support", "error": "login refused", "failures": 5, "correlation_id": "c1"}
    )
    mail = fetch_error_mail(event, SystemConfig(addresses=addresses))
    assert mail is not None
    assert [str(a.address) for a in mail.to] == [
        "admin@example.com",
        "ops@example.com",
        "team@example.com",
    ]
    assert fetch_error_mail(event, SystemConfig()) is None
