"""Typed views of the outgoing-mail properties: technical templates of automatic mail, the
system flavour (test archive) and the outgoing-mail scripts.

Kept beside ``shared.models.config`` (which puts them into ``SystemConfig``) so that each
module stays one concept. Field modules ``templates``, ``system`` and ``sender`` (see
``shared.config_views``).
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import Literal

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from shared.models._validators import optional_regex, render_error

# StrictUndefined: a misspelt variable fails the write, instead of vanishing from every mail.
_TECHNICAL = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)

TemplateName = Literal["acknowledgement", "assignee_changed", "fetch_error"]
TEMPLATE_VARIABLES: dict[TemplateName, tuple[str, ...]] = {
    "acknowledgement": ("case", "subject", "name", "address"),
    "assignee_changed": ("case", "subject", "name", "address", "assignee"),
    "fetch_error": ("account", "error", "failures"),
}
"""The variables each template may use (all strings); the sender supplies exactly these."""
_FIELD_VARIABLES = {
    f"{name}_{part}": variables
    for name, variables in TEMPLATE_VARIABLES.items()
    for part in ("subject", "body")
}


@functools.lru_cache(maxsize=64)
def _compiled(template: str) -> Template:
    # Compiling costs a millisecond and more; every acknowledgement uses the same template.
    return _TECHNICAL.from_string(template)


def render_technical(template: str, variables: dict[str, str]) -> str:
    """Render a technical template in Jinja2's sandbox; errors become ValueError."""
    try:
        return _compiled(template).render(**variables)
    except Exception as exc:  # a render-time error is the template's, whatever its type
        raise ValueError(f"template does not render: {render_error(exc)}") from exc


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


ACK_BODY = (
    "Dear {{ name or address }},\n\n"
    "Thank you for your message. It was registered as case {{ case }}.\n"
    "Please keep the case reference in the subject when you reply, so that your answer "
    "reaches the same case.\n"
)
ASSIGNEE_BODY = (
    "Dear {{ name or address }},\n\n"
    "Your case {{ case }} ({{ subject }}) is now handled by {{ assignee }}.\n"
)
FETCH_ERROR_BODY = (
    "Mailroom cannot fetch mail from the incoming account {{ account }}: it failed "
    "{{ failures }} times in a row.\n\nLast error: {{ error }}\n\n"
    "Mail for this account waits on its server until the problem is solved.\n"
)


class TemplateSettings(_View):
    """Technical templates of automatic mails (Jinja2, sandboxed), one subject and body each."""

    acknowledgement_subject: str = "{{ subject }}"
    """Subject of the acknowledgement of a new case (Jinja2: case, subject, name, address)."""
    acknowledgement_body: str = ACK_BODY
    """Text of the acknowledgement of a new case."""
    assignee_changed_subject: str = "{{ subject }}"
    """Subject of the notice that a case has a new assignee (Jinja2: also assignee)."""
    assignee_changed_body: str = ASSIGNEE_BODY
    """Text of the notice that a case has a new assignee."""
    fetch_error_subject: str = "Mailroom: fetching mail from account {{ account }} fails"
    """Subject of the fetch-error notification (Jinja2: account, error, failures)."""
    fetch_error_body: str = FETCH_ERROR_BODY
    """Text of the fetch-error notification to the administrators."""

    @field_validator(*_FIELD_VARIABLES)
    @classmethod
    def _renders(cls, value: str, info: ValidationInfo) -> str:
        # Rendered with sample values when saved, so that a template failing at render time
        # is refused naming its field instead of failing the first automatic mail.
        variables = _FIELD_VARIABLES[str(info.field_name)]
        if str(info.field_name).endswith("_subject") and ("\r" in value or "\n" in value):
            raise ValueError("a subject template must be one line: CR and LF are refused")
        try:
            render_technical(value, {v: f"sample-{v}" for v in variables})
        except ValueError as exc:
            raise ValueError(f"{exc}; it may use {', '.join(variables)}") from None
        return value

    def render(self, name: TemplateName, variables: dict[str, str]) -> tuple[str, str]:
        """The subject (on one line) and body of template ``name``."""
        subject = render_technical(getattr(self, f"{name}_subject"), variables)
        body = render_technical(getattr(self, f"{name}_body"), variables)
        return " ".join(subject.split()), body


class SystemSettings(_View):
    """Field module ``system``: which kind of installation this is.

    On a test or development system (its flavour is one of the test-archive flavours),
    outgoing mail is kept in the test archive instead of being sent, so that copies of
    production data never mail real customers.
    """

    flavour: str = Field(default="production", min_length=1, max_length=64)
    """Which kind of installation this is, e.g. production, test, development."""
    test_archive_flavours: tuple[str, ...] = ("test", "development")
    """Flavours whose outgoing mail goes to the test archive instead of being sent."""

    @property
    def intercepts(self) -> bool:
        """True when outgoing mail goes to the test archive instead of the SMTP server."""
        wanted = self.flavour.strip().lower()
        return any(wanted == f.strip().lower() for f in self.test_archive_flavours)


OUTGOING_SCRIPTS_GROUP = "mailroom.outgoing_scripts"


class OutgoingScriptSetting(_View):
    """One outgoing-mail script and whether it runs."""

    name: str
    enabled: bool = True


class SenderSettings(_View):
    """Field module ``sender``: outgoing-mail scripts (in order) and their parameters."""

    outgoing_scripts: tuple[OutgoingScriptSetting, ...] = (
        OutgoingScriptSetting(name="suppress_recipients", enabled=True),
        OutgoingScriptSetting(name="signature", enabled=True),
    )
    """The outgoing-mail scripts in the order they run, each enabled or not."""
    suppressed_recipients_pattern: str | None = (
        r"(?i)^(no-?reply|do-?not-?reply|mailer-daemon|postmaster)@"
    )
    """Recipients matching it never get mail (``suppress_recipients``): nobody reads them, and
    answering them starts mail loops."""
    signature: str = ""
    """Appended to the text of every mail by ``signature`` (nothing when empty)."""

    _regex = field_validator("suppressed_recipients_pattern")(optional_regex)

    @field_validator("outgoing_scripts")
    @classmethod
    def _installed(
        cls, value: tuple[OutgoingScriptSetting, ...]
    ) -> tuple[OutgoingScriptSetting, ...]:
        names = [s.name for s in value]
        if len(names) != len(set(names)):
            raise ValueError("each script may appear only once")
        installed = {ep.name for ep in entry_points(group=OUTGOING_SCRIPTS_GROUP)}
        unknown = sorted(set(names) - installed)
        if unknown:
            raise ValueError(
                f"no outgoing-mail script named {', '.join(unknown)}; "
                f"installed: {', '.join(sorted(installed)) or 'none'}"
            )
        return value
