"""Technical notifications: an ``account.failing`` event becomes a fetch-error mail to the
configured administrators (``addresses/notification_recipients``), built from the
``fetch_error`` template and sent through ``mail.outgoing`` like every other mail, so it
gets the outbox, the retries and the desk."""

from __future__ import annotations

import logging

from faststream.rabbit import RabbitRouter

from services.sender.deps import SenderDeps
from shared.broker import publish
from shared.models.config import SystemConfig
from shared.models.messages import AccountFailing, OutgoingMail
from shared.topology import CONSUMER_CHANNEL, MAIL_EXCHANGE, MAIL_OUTGOING, SENDER_ACCOUNT_FAILING

log = logging.getLogger(__name__)


def fetch_error_mail(event: AccountFailing, config: SystemConfig) -> OutgoingMail | None:
    """The notification for ``event``, or None when no administrator is configured."""
    recipients = list(config.addresses.technical_recipients)
    if not recipients:
        return None
    return OutgoingMail(
        # One mail per event: a redelivered event is not mailed twice.
        mail_id=f"fetch-error-{event.correlation_id}",
        kind="notification",
        automatic=True,
        to=recipients,
        subject=f"account {event.account} failing",
        text="",
        template="fetch_error",
        variables={
            "account": event.account,
            "error": event.error,
            "failures": str(event.failures),
        },
        correlation_id=event.correlation_id,
    )


def undelivered_mail(mail: OutgoingMail, reason: str, config: SystemConfig) -> OutgoingMail | None:
    """The bounce-style notice that ``mail`` was given up, to the administrators; None when
    none is configured, or when ``mail`` is such a notice itself (never a bounce of a bounce).

    Postfix returns the mail to its sender; here the sender is Mailroom, so the people who
    run it are told, and the mail itself waits on the desk for a replay.
    """
    recipients = list(config.addresses.technical_recipients)
    if not recipients or mail.mail_id.startswith("undelivered-"):
        return None
    addresses = ", ".join(str(a.address) for a in mail.to)
    return OutgoingMail(
        mail_id=f"undelivered-{mail.mail_id}",
        kind="notification",
        automatic=True,
        to=recipients,
        subject=f"Undelivered mail: {mail.subject}"[:200],
        text=(
            f"Mailroom could not deliver mail {mail.mail_id} to {addresses} and gave up.\n\n"
            f"Reason: {reason}\n\nThe mail is on the failed-mail desk (sender:{mail.mail_id});"
            " replay it from there once the cause is fixed.\n"
        ),
        correlation_id=mail.correlation_id,
    )


def build_notification_router(deps: SenderDeps) -> RabbitRouter:
    """The subscriber that turns ``account.failing`` into notification mail."""
    router = RabbitRouter()

    @router.subscriber(
        SENDER_ACCOUNT_FAILING,
        MAIL_EXCHANGE,
        title="sender.account_failing",
        channel=CONSUMER_CHANNEL,
        description="Mails the fetch-error notification to the administrators.",
    )
    async def account_failing(event: AccountFailing) -> None:
        mail = fetch_error_mail(event, deps.config())
        if mail is None:
            log.warning(
                "incoming account failing, but no notification_recipients are configured",
                extra={"account": event.account},
            )
            return
        await publish(deps.publisher, mail, routing_key=MAIL_OUTGOING)

    return router
