"""Subject, text and From of outgoing mail: technical templates, the allowed-From list and
conversation ids."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.sender.compose import compose
from services.sender.content import content_of
from shared.conversation import ConversationSettings, find_conversation_id
from shared.models.config import Addresses, SystemConfig
from shared.models.messages import MailAddress, OutgoingMail
from shared.models.outgoing_config import TemplateSettings


def mail(**fields: Any) -> OutgoingMail:
    base: dict[str, Any] = {
        "mail_id": "m-1",
        "kind": "reply",
        "automatic": False,
        "case_number": 10042,
        "to": [{"name": "Carol", "address": "carol@example.org"}],
        "subject": "Printer broken",
        "text": "It works again.\n",
    }
    return OutgoingMail.model_validate({**base, **fields})


def test_an_acknowledgement_is_rendered_from_its_template() -> None:
    templates = TemplateSettings(
        acknowledgement_subject="Received: {{ subject }}",
        acknowledgement_body="Hello {{ name }}, case {{ case }} is open.",
    )
    content = content_of(
        mail(kind="acknowledgement", automatic=True, text="ignored"),
        SystemConfig(templates=templates),
    )
    assert content.subject == "Received: Printer broken [Case#10042]"
    assert content.text == "Hello Carol, case 10042 is open."


def test_a_fetch_error_notification_takes_its_variables_from_the_mail() -> None:
    content = content_of(
        mail(
            kind="notification",
            case_number=None,
            template="fetch_error",
            variables={"account": "support", "error": "login refused", "failures": "5"},
        ),
        SystemConfig(),
    )
    assert content.subject == "Mailroom: fetching mail from account support fails"
    assert "failed 5 times" in content.text and "login refused" in content.text


def test_a_template_missing_its_variables_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs variables assignee"):
        content_of(mail(template="assignee_changed"), SystemConfig())


def test_templates_are_checked_on_write_and_sandboxed() -> None:
    with pytest.raises(ValidationError, match=r"(?s)acknowledgement_body.*'custmer' is undefined"):
        TemplateSettings(acknowledgement_body="Dear {{ custmer }}")
    with pytest.raises(ValidationError, match="fetch_error_body"):
        TemplateSettings(fetch_error_body="{{ account.__class__.__mro__[1].__subclasses__() }}")


def test_a_from_outside_the_allowed_list_is_refused_with_a_clear_error() -> None:
    config = SystemConfig(
        addresses=Addresses(
            from_address=MailAddress(address="support@example.com"),
            allowed_from=("support@example.com", "sales@example.com"),
        )
    )
    allowed = content_of(mail(from_address={"address": "Sales@example.com"}), config)
    assert str(allowed.from_address.address).lower() == "sales@example.com"
    with pytest.raises(ValueError, match=r"From address boss@example\.com is not allowed"):
        content_of(mail(from_address={"address": "boss@example.com"}), config)


def test_the_configured_from_must_itself_be_allowed() -> None:
    with pytest.raises(ValidationError, match="not in allowed_from"):
        Addresses(allowed_from=("support@example.com",))


@pytest.mark.parametrize("placement", ["subject", "body"])
def test_the_conversation_id_goes_where_configured_and_the_processor_finds_it(
    placement: str,
) -> None:
    settings = ConversationSettings(enabled=True, system_identifier="ACME", placement=placement)
    config = SystemConfig(conversation=settings)
    content = content_of(mail(), config, conversation="00000007")
    where = content.subject if placement == "subject" else content.text
    assert "{ACME: 00000007}" in where
    assert find_conversation_id(settings, where) == "00000007"
    message = compose(mail(), config, content=content)
    assert str(message["Subject"]).startswith("Printer broken [Case#10042]")
