"""What an outgoing mail says and who it is from: templates, the allowed-From check, the
case reference and the conversation id. Pure: the same mail and config give the same text.

Problems only a configuration or the publisher can fix (a From not allowed, a template
that does not render) raise ValueError, which the sender treats as permanent.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.conversation import conversation_token
from shared.models.config import SystemConfig, render_subject
from shared.models.messages import MailAddress, OutgoingMail
from shared.models.outgoing_config import TEMPLATE_VARIABLES, TemplateName

RENDERED = "_rendered"
"""Marks a mail whose template was rendered (acknowledgements name none, yet have one)."""


@dataclass(frozen=True)
class Content:
    """The parts of the message that depend on the configuration."""

    from_address: MailAddress
    subject: str
    text: str


def template_of(mail: OutgoingMail) -> TemplateName | None:
    """The technical template the mail is built from, if any.

    An acknowledgement always comes from its template, unless it was rendered already
    (``variables`` then holds ``rendered``).
    """
    if mail.template is not None:
        return mail.template
    if mail.kind == "acknowledgement" and RENDERED not in mail.variables:
        return "acknowledgement"
    return None


def _variables(mail: OutgoingMail, template: TemplateName) -> dict[str, str]:
    first = mail.to[0]
    known = {
        "case": str(mail.case_number) if mail.case_number is not None else "",
        "subject": mail.subject,
        "name": first.name,
        "address": str(first.address),
    }
    values = {**known, **mail.variables}
    missing = [v for v in TEMPLATE_VARIABLES[template] if v not in values]
    if missing:
        raise ValueError(f"template {template} needs variables {', '.join(missing)}")
    return {v: values[v] for v in TEMPLATE_VARIABLES[template]}


def render_template(mail: OutgoingMail, config: SystemConfig) -> OutgoingMail:
    """The mail with subject and text from its technical template, if it has one.

    The result names no template any more, so outgoing-mail scripts see (and may change)
    the text that will be sent, and it is never rendered twice.
    """
    template = template_of(mail)
    if template is None:
        return mail
    subject, text = config.templates.render(template, _variables(mail, template))
    variables = {**mail.variables, RENDERED: template}
    return mail.model_copy(
        update={"subject": subject, "text": text, "template": None, "variables": variables}
    )


def content_of(
    mail: OutgoingMail, config: SystemConfig, *, conversation: str | None = None
) -> Content:
    """From, subject and text of ``mail``; ``conversation`` is the case's reference, if any."""
    return finish(render_template(mail, config), config, conversation=conversation)


def finish(mail: OutgoingMail, config: SystemConfig, *, conversation: str | None = None) -> Content:
    """From (checked), subject with case reference and conversation id, and text of a mail
    whose template (if any) was rendered already."""
    from_address = mail.from_address or config.addresses.from_address
    if not config.addresses.from_allowed(str(from_address.address)):
        raise ValueError(
            f"From address {from_address.address} is not allowed: outgoing mail may only "
            f"be sent from {', '.join(config.addresses.allowed_from)} (addresses/allowed_from)"
        )
    subject, text = mail.subject, mail.text
    if mail.case_number is not None:
        subject = render_subject(
            config.settings.outgoing_subject_template, case=str(mail.case_number), subject=subject
        )
    if conversation is not None:
        token = conversation_token(config.conversation, conversation)
        if config.conversation.placement == "subject":
            subject = f"{subject} {token}"
        else:
            text = f"{text.rstrip()}\n\n{token}\n"
    return Content(from_address=from_address, subject=subject, text=text)
