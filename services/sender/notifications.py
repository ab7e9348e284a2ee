"""Technical notifications: an ``account.failing`` event becomes a fetch-error mail to the
configured administrators (``addresses/notification_recipients``), built from the
``fetch_error`` template and sent through ``mail.outgoing`` like every other mail, so it
gets the outbox, the retries and the desk."""

from __future__ import annotations

import logging

from faststream.rabbit import RabbitRouter

from shared.broker import publish
from shared.models.config import SystemConfig
from shared.models.messages import AccountFailing, OutgoingMail
from shared.runtime import Runtime
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


def build_notification_router(rt: Runtime) -> RabbitRouter:
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
        mail = fetch_error_mail(event, rt.config)
        if mail is None:
            log.warning(
                "incoming account failing, but no notification_recipients are configured",
                extra={"account": event.account},
            )
            return
        await publish(rt.broker, mail, routing_key=MAIL_OUTGOING)

    return router
