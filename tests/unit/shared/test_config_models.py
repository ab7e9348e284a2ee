"""Typed views: pattern/template validation, properties → views, secrets sealed."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from shared.config_views import build_config, seal_secrets
from shared.errors import ConfigRejected, SecretsUnavailable
from shared.models.config import (
    GlobalSettings,
    IncomingAccount,
    find_case_reference,
    render_subject,
)
from shared.models.records import Property
from shared.secrets import SecretBox, is_sealed

BOX = SecretBox(SecretStr("unit-test-key"))


def test_default_template_round_trips_through_default_pattern() -> None:
    settings = GlobalSettings()
    subject = render_subject(settings.outgoing_subject_template, case="10001", subject="Hi")
    assert subject == "Hi [Case#10001]"
    assert find_case_reference(settings.incoming_subject_pattern, f"Re: AW: {subject}") == "10001"


def test_template_that_the_pattern_cannot_match_is_refused_with_reason() -> None:
    with pytest.raises(ValidationError) as err:
        GlobalSettings(outgoing_subject_template="{{ subject }} (ticket {{ case }})")
    text = str(err.value)
    assert "finds no case reference" in text
    assert "replies would open new cases" in text


def test_pattern_without_case_group_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"named group \(\?P<case>"):
        GlobalSettings(incoming_subject_pattern=r"\[Case#(\d+)\]")


def test_invalid_regex_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a valid regex"):
        GlobalSettings(incoming_subject_pattern=r"\[Case#(?P<case>\d+")


def test_template_syntax_error_is_refused() -> None:
    with pytest.raises(ValidationError, match="does not render"):
        GlobalSettings(outgoing_subject_template="{{ subject [Case#{{ case }}]")


def test_pattern_and_template_changed_together_validate() -> None:
    settings = GlobalSettings(
        incoming_subject_pattern=r"Ticket T-(?P<case>\d+)",
        outgoing_subject_template="{{ subject }} Ticket T-{{ case }}",
    )
    assert settings.incoming_subject_pattern.startswith("Ticket")


def test_account_port_defaults_by_protocol() -> None:
    plain = IncomingAccount(name="a", protocol="IMAP", host="h", username="u")
    tls = IncomingAccount(name="b", protocol="IMAPS", host="h", username="u")
    assert (plain.effective_port, tls.effective_port) == (143, 993)


def test_account_delete_setting_inherits_global_default() -> None:
    account = IncomingAccount(name="a", host="h", username="u")
    assert account.deletes(True) and not account.deletes(False)
    assert not account.model_copy(update={"delete_read_messages": "no"}).deletes(True)


def test_header_injection_in_host_is_refused() -> None:
    with pytest.raises(ValidationError, match="header injection"):
        IncomingAccount(name="a", host="h\r\nX: y", username="u")


def test_properties_build_views_and_secrets_round_trip() -> None:
    # Long enough that random ciphertext cannot contain it by chance.
    password = "plain-imap-password-0123"
    sealed = seal_secrets({"host": "imap.example.org", "username": "u", "password": password}, BOX)
    assert is_sealed(sealed["password"]) and password not in str(sealed)
    props = [
        Property(module="incoming.accounts", key="support", value=sealed),
        Property(module="settings", key="poll_interval_seconds", value=2),
    ]
    config = build_config(props, box=BOX, version=7)
    assert config.version == 7
    assert config.settings.poll_interval_seconds == 2
    opened = config.accounts["support"].password
    assert opened is not None and opened.get_secret_value() == password


def test_unknown_key_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigRejected, match=r"known keys: .*poll_interval_seconds"):
        build_config([Property(module="settings", key="poll", value=1)], box=BOX, version=1)


def test_bad_value_names_the_property() -> None:
    props = [Property(module="settings", key="poll_interval_seconds", value=-1)]
    with pytest.raises(ConfigRejected, match=r"settings\.poll_interval_seconds"):
        build_config(props, box=BOX, version=1)


def test_secrets_need_a_key() -> None:
    with pytest.raises(SecretsUnavailable, match="MAILROOM_SECRET_KEY"):
        seal_secrets({"password": "pw"}, SecretBox(None))


def test_secret_from_another_key_is_reported() -> None:
    sealed = seal_secrets({"password": "pw"}, BOX)["password"]
    with pytest.raises(SecretsUnavailable, match="differs"):
        SecretBox(SecretStr("another-key")).open(sealed)


def test_unknown_script_is_refused_naming_the_installed_ones() -> None:
    from shared.models.config import ProcessorSettings, ScriptSetting

    with pytest.raises(ValidationError, match=r"no incoming-mail script named nope; installed:"):
        ProcessorSettings(incoming_scripts=(ScriptSetting(name="nope"),))
