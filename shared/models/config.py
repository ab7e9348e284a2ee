"""Typed views of the system properties. Each is validated on every write.

Properties are stored as (module, key, value) like ConSol CM's; these models are what the
services use. See ``shared/config_views.py`` for how properties become views.
"""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from typing import Literal

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from shared.models.messages import HeaderText, MailAddress

ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SAMPLE_CASE_REFERENCE = "10042"
SAMPLE_SUBJECT = "Printer on floor 3 is broken"

_TEMPLATES = SandboxedEnvironment(autoescape=False)


def render_subject(template: str, *, case: str, subject: str) -> str:
    """Render the outgoing subject template in Jinja2's sandbox; errors become ValueError."""
    try:
        rendered = _TEMPLATES.from_string(template).render(case=case, subject=subject)
    except TemplateError as exc:
        raise ValueError(f"outgoing subject template does not render: {exc}") from exc
    return " ".join(rendered.split())


def find_case_reference(pattern: str, subject: str) -> str | None:
    """The case reference the incoming subject pattern finds in ``subject``, if any."""
    match = re.search(pattern, subject)
    return match.group("case") if match else None


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IncomingAccount(_View):
    """One mailbox Mailroom fetches from."""

    name: str
    protocol: Literal["IMAP", "IMAPS"] = "IMAPS"
    host: HeaderText
    port: int | None = Field(default=None, ge=1, le=65535)
    folder: HeaderText = "INBOX"
    username: HeaderText
    password: SecretStr | None = None
    delete_read_messages: Literal["inherit", "yes", "no"] = "inherit"
    enabled: bool = True
    verify_tls: bool = True
    ca_file: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ACCOUNT_NAME.match(value):
            raise ValueError(
                "account name must be 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return value

    @property
    def effective_port(self) -> int:
        """The configured port, or the protocol's standard one."""
        return self.port or {"IMAP": 143, "IMAPS": 993}[self.protocol]

    @property
    def uses_tls(self) -> bool:
        """True when the connection is TLS from the first byte."""
        return self.protocol == "IMAPS"

    def deletes(self, default: bool) -> bool:
        """Whether read messages are deleted, resolving ``inherit`` against the global default."""
        if self.delete_read_messages == "inherit":
            return default
        return self.delete_read_messages == "yes"


class OutgoingConnection(_View):
    """The SMTP connection the sender uses."""

    host: HeaderText
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: HeaderText | None = None
    password: SecretStr | None = None
    connect_timeout_ms: int = Field(default=10_000, ge=100, le=600_000)
    send_timeout_ms: int = Field(default=60_000, ge=100, le=3_600_000)
    verify_tls: bool = True
    ca_file: str | None = None

    @property
    def effective_port(self) -> int:
        """The configured port, or the standard one for the security mode."""
        return self.port or {"none": 25, "starttls": 587, "tls": 465}[self.security]

    @model_validator(mode="after")
    def _auth_complete(self) -> OutgoingConnection:
        if self.password is not None and not self.username:
            raise ValueError("a password needs a username")
        return self


class GlobalSettings(_View):
    """Settings every service shares."""

    incoming_subject_pattern: str = r"\[Case#(?P<case>\d+)\]"
    outgoing_subject_template: str = "{{ subject }} [Case#{{ case }}]"
    poll_interval_seconds: float = Field(default=30.0, ge=0.2, le=86_400)
    delete_read_messages: bool = False
    fetch_retries: int = Field(default=5, ge=0, le=100)
    connect_timeout_seconds: float = Field(default=30.0, ge=1, le=600)

    @field_validator("incoming_subject_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"incoming subject pattern is not a valid regex: {exc}") from exc
        if "case" not in compiled.groupindex:
            raise ValueError(
                "incoming subject pattern needs a named group (?P<case>...) "
                "that captures the case reference"
            )
        return value

    @model_validator(mode="after")
    def _template_round_trips(self) -> GlobalSettings:
        rendered = render_subject(
            self.outgoing_subject_template, case=SAMPLE_CASE_REFERENCE, subject=SAMPLE_SUBJECT
        )
        found = find_case_reference(self.incoming_subject_pattern, rendered)
        if found != SAMPLE_CASE_REFERENCE:
            raise ValueError(
                f"outgoing subject template {self.outgoing_subject_template!r} renders "
                f"{rendered!r} for case {SAMPLE_CASE_REFERENCE}, but the incoming subject "
                f"pattern {self.incoming_subject_pattern!r} "
                + ("finds no case reference in it" if found is None else f"finds {found!r}")
                + "; replies would open new cases. Put {{ case }} into the template in the "
                "form the pattern expects, or change the pattern."
            )
        return self


class Addresses(_View):
    """Sender identities of outgoing mail."""

    from_address: MailAddress = MailAddress(name="Helpdesk", address="helpdesk@example.com")
    reply_to: MailAddress | None = None


class ScriptSetting(_View):
    """One incoming-mail script and whether it runs."""

    name: str
    enabled: bool = True


class ProcessorSettings(_View):
    """Which incoming-mail scripts run, in which order, and their parameters."""

    incoming_scripts: tuple[ScriptSetting, ...] = (
        ScriptSetting(name="reject_subject", enabled=False),
        ScriptSetting(name="case_matcher", enabled=True),
    )
    reject_subject_pattern: str | None = None
    acknowledge_new_cases: bool = True

    @field_validator("reject_subject_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regex: {exc}") from exc
        return value

    @field_validator("incoming_scripts")
    @classmethod
    def _unique(cls, value: tuple[ScriptSetting, ...]) -> tuple[ScriptSetting, ...]:
        names = [s.name for s in value]
        if len(names) != len(set(names)):
            raise ValueError("each script may appear only once")
        installed = {ep.name for ep in entry_points(group="mailroom.incoming_scripts")}
        unknown = sorted(set(names) - installed)
        if unknown:
            raise ValueError(
                f"no incoming-mail script named {', '.join(unknown)}; "
                f"installed: {', '.join(sorted(installed))}"
            )
        return value


class SystemConfig(_View):
    """Everything the services read from the properties, at one version."""

    version: int = 0
    accounts: dict[str, IncomingAccount] = Field(default_factory=dict)
    outgoing: OutgoingConnection | None = None
    settings: GlobalSettings = GlobalSettings()
    addresses: Addresses = Addresses()
    processor: ProcessorSettings = ProcessorSettings()
