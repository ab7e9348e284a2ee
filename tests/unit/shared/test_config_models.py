"""Typed views: pattern/template validation, properties → views, secrets sealed."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from shared.config_views import build_config, seal_secrets
from shared.errors import ConfigRejected, SecretsUnavailable
from shared.models.config import (
    GlobalSettings,
    IncomingAccount,
    OutgoingConnection,
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
    plain = IncomingAccount(name="a", protocol="IMAP", host="h", username="u", password="p")
    tls = IncomingAccount(name="b", protocol="IMAPS", host="h", username="u", password="p")
    assert (plain.effective_port, tls.effective_port) == (143, 993)


def test_account_disposal_inherits_global_default() -> None:
    account = IncomingAccount(name="a", host="h", username="u", password="p")
    assert (account.disposal(True), account.disposal(False)) == ("delete", "seen")
    assert account.model_copy(update={"after_fetch": "seen"}).disposal(True) == "seen"


@pytest.mark.parametrize(
    ("old", "after_fetch"),
    [
        ({"delete_read_messages": "yes"}, "delete"),
        ({"delete_read_messages": "no"}, "seen"),
        ({"delete_read_messages": "inherit"}, "inherit"),
        ({"protocol": "POP3S"}, "delete"),
        ({"protocol": "POP3S", "leave_on_server": False}, "delete"),
        ({"protocol": "POP3S", "leave_on_server": True}, "seen"),
        ({"protocol": "POP3S", "leave_on_server": True, "after_fetch": "inherit"}, "inherit"),
        ({"delete_read_messages": "yes", "after_fetch": "seen"}, "seen"),
    ],
)
def test_configs_from_before_after_fetch_still_load_with_the_same_effect(
    old: dict[str, object], after_fetch: str
) -> None:
    account = IncomingAccount.model_validate(
        {"name": "a", "host": "h", "username": "u", "password": "p", **old}
    )
    assert account.after_fetch == after_fetch


def test_header_injection_in_host_is_refused() -> None:
    with pytest.raises(ValidationError, match="header injection"):
        IncomingAccount(name="a", host="h\r\nX: y", username="u", password="p")


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


# Bad values are refused in the model, so the API, the CLI and config import refuse them
# alike; build_config is the path every write takes, and its text names property and field.


def _account_refusal(**fields: object) -> str:
    value = {"host": "imap.example.org", "username": "u", "password": "pw"} | fields
    props = [Property(module="incoming.accounts", key="box", value=value)]
    with pytest.raises(ConfigRejected) as err:
        build_config(props, box=BOX, version=1)
    return str(err.value)


def _outgoing_refusal(**fields: object) -> str:
    value = {"host": "smtp.example.org"} | fields
    props = [Property(module="outgoing", key="smtp", value=value)]
    with pytest.raises(ConfigRejected) as err:
        build_config(props, box=BOX, version=1)
    return str(err.value)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"host": ""}, "incoming.accounts/box.host: must not be empty"),
        ({"host": "imap example.org"}, "incoming.accounts/box.host: 'imap example.org' is not"),
        ({"username": ""}, "incoming.accounts/box.username: must not be empty"),
        ({"username": "  "}, "incoming.accounts/box.username: must not be empty"),
        ({"password": None}, "auth basic needs a password"),
        ({"password": ""}, "auth basic needs a password"),
        ({"port": 0}, "incoming.accounts/box.port: Input should be greater than or equal to 1"),
        ({"port": 65536}, "incoming.accounts/box.port: Input should be less than or equal"),
        ({"protocol": "SMTP"}, "incoming.accounts/box.protocol: Input should be"),
        ({"security": "tls"}, "incoming.accounts/box.security: Input should be"),
        ({"protocol": "IMAPS", "security": "none"}, "security none does not apply to IMAPS"),
        ({"protocol": "POP3S", "security": "STARTTLS"}, "security STARTTLS does not apply"),
        ({"auth": "basic-ish"}, "incoming.accounts/box.auth: Input should be"),
    ],
)
def test_bad_account_values_are_refused_naming_the_field(
    fields: dict[str, object], expected: str
) -> None:
    assert expected in _account_refusal(**fields)


def test_an_account_that_is_not_an_object_is_refused_naming_it() -> None:
    props = [Property(module="incoming.accounts", key="box", value="imap.example.org")]
    with pytest.raises(ConfigRejected, match=r"incoming\.accounts/box: Input should be"):
        build_config(props, box=BOX, version=1)


def test_plain_protocols_keep_every_security_and_oauth_needs_no_password() -> None:
    for protocol in ("IMAP", "POP3"):
        for security in ("none", "STARTTLS", "auto"):
            IncomingAccount(
                name="a", protocol=protocol, security=security, host="h", username="u", password="p"
            )
    oauth = IncomingAccount(
        name="a",
        host="h",
        username="u",
        auth="oauth2",
        client_id="c",
        client_secret=SecretStr("s"),
        authority="https://login.example.org/t",
        scope="s",
    )
    assert oauth.password is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"host": ""}, "outgoing/smtp.host: must not be empty"),
        ({"host": " smtp.example.org"}, "outgoing/smtp.host: ' smtp.example.org' is not"),
        ({"username": "u"}, "auth basic with username 'u' needs a password"),
        ({"username": "u", "password": ""}, "auth basic with username 'u' needs a password"),
        ({"username": ""}, "outgoing/smtp.username: must not be empty"),
        ({"password": "pw"}, "a password needs a username"),
        ({"port": 0}, "outgoing/smtp.port: Input should be greater than or equal to 1"),
        ({"port": 70000}, "outgoing/smtp.port: Input should be less than or equal to 65535"),
        ({"security": "STARTTLS"}, "outgoing/smtp.security: Input should be"),
    ],
)
def test_bad_outgoing_values_are_refused_naming_the_field(
    fields: dict[str, object], expected: str
) -> None:
    assert expected in _outgoing_refusal(**fields)


def test_outgoing_without_a_login_or_with_borrowed_credentials_needs_no_password() -> None:
    assert OutgoingConnection(host="smtp.example.org").username is None
    borrowed = OutgoingConnection(host="smtp.example.org", credentials_from="support")
    assert borrowed.password is None


@pytest.mark.parametrize(
    "template",
    [
        "{{ 1/0 }} [Case#{{ case }}]",  # ZeroDivisionError
        "{{ range(10**9)|list }} [Case#{{ case }}]",  # the sandbox's OverflowError
        "{{ subject.nope.deeper }} [Case#{{ case }}]",  # UndefinedError
    ],
)
def test_subject_template_failing_at_render_time_names_the_field(template: str) -> None:
    props = [Property(module="settings", key="outgoing_subject_template", value=template)]
    with pytest.raises(ConfigRejected) as err:
        build_config(props, box=BOX, version=1)
    assert str(err.value).startswith("settings.outgoing_subject_template: ")
    assert "does not render" in str(err.value)


def test_render_time_error_names_the_exception_when_it_says_little() -> None:
    with pytest.raises(ValueError, match=r"division by zero \(ZeroDivisionError\)"):
        render_subject("{{ 1/0 }}", case="1", subject="s")


@pytest.mark.parametrize(
    ("key", "template"),
    [
        ("acknowledgement_body", "{{ 1/0 }}"),
        ("assignee_changed_subject", "{{ range(10**9)|list }}"),
        ("fetch_error_body", "{{ account.__class__.__mro__ }}"),  # the sandbox refuses
    ],
)
def test_technical_template_failing_at_render_time_names_the_field(key: str, template: str) -> None:
    props = [Property(module="templates", key=key, value=template)]
    with pytest.raises(ConfigRejected) as err:
        build_config(props, box=BOX, version=1)
    assert str(err.value).startswith(f"templates.{key}: template does not render")


def test_number_format_failing_when_formatted_names_the_field() -> None:
    props = [Property(module="conversation", key="number_format", value="{number.real.x}")]
    with pytest.raises(ConfigRejected, match=r"conversation\.number_format: number format"):
        build_config(props, box=BOX, version=1)
