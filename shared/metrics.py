"""Prometheus metrics of one Mailroom process, all named ``mailroom_*``.

One registry per process (``REGISTRY``): in ``mailroom run all`` the four services share it
and one ``/metrics`` shows them all. Callers never touch the metric objects; they call the
one-line helpers below (``mail_fetched("support")``), so label names and values stay in one
place. Queue depths are read from RabbitMQ only when ``/metrics`` is scraped
(:func:`refresh_queue_depths`), with a passive declare that never creates or changes a queue.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Final, Literal

from faststream.rabbit import Channel, RabbitBroker
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import generate_latest

from shared.models.records import OutboxStatus
from shared.topology import DEAD_LETTER_QUEUES, SENDER_ACCOUNT_FAILING, WORK_QUEUES

log = logging.getLogger(__name__)

ProcessedOutcome = Literal["new_case", "follow_up", "dropped", "failed"]
"""What became of a mail in the processor."""
SentOutcome = Literal["sent", "deferred", "failed", "intercepted", "stopped"]
"""A delivery attempt's result for the whole mail (see ``services.sender.outcome``)."""
DeskService = Literal["processor", "sender"]
"""The service whose failure put a mail on the failed-mail desk."""
LeaseChange = Literal["acquired", "lost", "released"]
"""How a fetcher instance's ownership of an account changed."""

REGISTRY: Final = CollectorRegistry(auto_describe=True)
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

MAILS_FETCHED: Final = Counter(
    "mailroom_mails_fetched",
    "Mails stored and announced (mail.received confirmed by RabbitMQ), by account.",
    ["account"],
    registry=REGISTRY,
)
FETCH_ERRORS: Final = Counter(
    "mailroom_fetch_errors",
    "Failed fetch rounds (connect, login, fetch, store or publish), by account.",
    ["account"],
    registry=REGISTRY,
)
ACCOUNT_ERRORS: Final = Gauge(
    "mailroom_account_consecutive_errors",
    "Failed fetch rounds in a row per account; 0 once a round succeeds again.",
    ["account"],
    registry=REGISTRY,
)
CREDENTIAL_EXPIRY: Final = Gauge(
    "mailroom_credential_expiry_seconds",
    "Seconds until an OAuth 2.0 credential's access token, client secret, certificate or "
    "refresh token expires (negative: expired), by credential and kind.",
    ["credential", "kind"],
    registry=REGISTRY,
)
MAILS_PROCESSED: Final = Counter(
    "mailroom_mails_processed",
    "Mails the processor finished, by outcome (new_case, follow_up, dropped, failed).",
    ["outcome"],
    registry=REGISTRY,
)
MAILS_FAILED: Final = Counter(
    "mailroom_mails_failed",
    "Mails put on the failed-mail desk, by the service that failed them.",
    ["service"],
    registry=REGISTRY,
)
MAILS_SENT: Final = Counter(
    "mailroom_mails_sent",
    "Outgoing mails after a delivery attempt, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
QUEUE_MESSAGES: Final = Gauge(
    "mailroom_queue_messages",
    "Messages ready in a RabbitMQ queue when /metrics was scraped (work queues: the lag).",
    ["queue"],
    registry=REGISTRY,
)
FETCHER_OWNED_ACCOUNTS: Final = Gauge(
    "mailroom_fetcher_owned_accounts",
    "Accounts this fetcher instance currently fetches (holds the lease of).",
    registry=REGISTRY,
)
FETCHER_LEASE_CHANGES: Final = Counter(
    "mailroom_fetcher_lease_changes",
    "Account leases this fetcher instance acquired, lost or released.",
    ["change"],
    registry=REGISTRY,
)

WATCHED_QUEUES: Final[tuple[str, ...]] = (
    *(q.name for q in WORK_QUEUES.values()),
    *(q.name for q in DEAD_LETTER_QUEUES.values()),
    SENDER_ACCOUNT_FAILING.name,
)
"""Queues whose depth is exported: the work queues and the failed-mail desk."""

_METRICS_CHANNEL: Final = Channel()
"""Its own channel: a failed passive declare closes the channel it ran on, and that must
never be the channel the service publishes on."""


def mail_fetched(account: str, count: int = 1) -> None:
    """``count`` mails of ``account`` were stored and their announcement confirmed."""
    MAILS_FETCHED.labels(account=account).inc(count)


def fetch_failed(account: str, consecutive: int) -> None:
    """A fetch round of ``account`` failed; ``consecutive`` rounds in a row so far."""
    FETCH_ERRORS.labels(account=account).inc()
    ACCOUNT_ERRORS.labels(account=account).set(consecutive)


def fetch_recovered(account: str) -> None:
    """A fetch round of ``account`` succeeded (its error streak ends)."""
    ACCOUNT_ERRORS.labels(account=account).set(0)


def credential_expiry(credential: str, kind: str, seconds: float | None) -> None:
    """Seconds until ``kind`` (access_token, client_secret, refresh_token) of ``credential``
    expires; None removes the series (nothing of that kind expires)."""
    if seconds is None:
        with contextlib.suppress(KeyError):
            CREDENTIAL_EXPIRY.remove(credential, kind)
        return
    CREDENTIAL_EXPIRY.labels(credential, kind).set(seconds)


def mail_processed(outcome: ProcessedOutcome) -> None:
    """The processor finished a mail with ``outcome``."""
    MAILS_PROCESSED.labels(outcome=outcome).inc()


_OUTCOME_OF_ACTION: Final[dict[str, ProcessedOutcome]] = {
    "new_case": "new_case",
    "attach": "follow_up",
    "drop": "dropped",
    "reject": "failed",
}


def mail_decided(action: str) -> None:
    """The processor applied a script decision (``new_case``, ``attach``, ``drop``, ``reject``)."""
    mail_processed(_OUTCOME_OF_ACTION[action])


def mail_failed(service: DeskService) -> None:
    """``service`` put a mail on the failed-mail desk."""
    MAILS_FAILED.labels(service=service).inc()


def mail_sent(outcome: SentOutcome) -> None:
    """The sender finished a delivery attempt of one mail with ``outcome``."""
    MAILS_SENT.labels(outcome=outcome).inc()


def mail_delivered(status: OutboxStatus, *, retry: bool) -> None:
    """The sender recorded a delivery attempt with the mail's outbox ``status``; ``retry``:
    some recipients were deferred (the mail stays ``queued`` for them)."""
    if retry or status == "queued":
        mail_sent("deferred")
    else:
        mail_sent(status)


def owned_accounts(count: int) -> None:
    """This fetcher instance now owns ``count`` accounts."""
    FETCHER_OWNED_ACCOUNTS.set(count)


def lease_changed(change: LeaseChange, count: int = 1) -> None:
    """This fetcher instance's ownership of ``count`` accounts changed."""
    FETCHER_LEASE_CHANGES.labels(change=change).inc(count)


@dataclass(frozen=True)
class QueueState:
    """A queue's ready messages and the consumers reading it (the service instances)."""

    messages: int
    consumers: int


async def queue_depths(broker: RabbitBroker) -> dict[str, QueueState | None]:
    """Each watched queue's ready-message and consumer count, read with a passive declare;
    None for a queue that cannot be read (broker down, queue not declared yet)."""
    depths: dict[str, QueueState | None] = {}
    for name in WATCHED_QUEUES:
        try:
            channel = await broker.config.channel_manager.get_channel(_METRICS_CHANNEL)
            queue = await channel.declare_queue(name, passive=True, robust=False)
        except Exception as exc:
            log.debug("queue depth unavailable", extra={"queue": name, "error": str(exc)})
            depths[name] = None
            continue
        result = queue.declaration_result
        depths[name] = QueueState(result.message_count or 0, result.consumer_count or 0)
    return depths


async def refresh_queue_depths(broker: RabbitBroker) -> None:
    """Export each watched queue's depth; a queue that cannot be read loses its sample
    rather than showing a stale number."""
    for name, state in (await queue_depths(broker)).items():
        if state is None:
            with contextlib.suppress(KeyError):
                QUEUE_MESSAGES.remove(name)
        else:
            QUEUE_MESSAGES.labels(queue=name).set(state.messages)


def render() -> bytes:
    """The registry in the Prometheus text format (serve with :data:`CONTENT_TYPE`)."""
    return generate_latest(REGISTRY)
