"""The failed-mail desk: dead letters become entries with their reason; operators replay them.

The service that gave up dead-letters the message with its reason in the
``x-mailroom-error`` header (``shared.retry.dead_letter``) and records it on the stored
document (raw mail or outbox entry) when MongoDB answers. The desk takes the header's reason
first (it is this failure's, and it is there even when MongoDB was away), then the record's,
then, for a message the broker dead-lettered by itself, its delivery limit. A mail that is
processed (it has its case) is not put on the desk: its state follows the case, not a late
dead letter of a redelivered copy.
Replay is idempotent: an entry moves from ``failed`` to ``replayed`` atomically, so two
operators (or a retried request) replay it once; each replay is audited.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from faststream import AckPolicy
from faststream.rabbit import RabbitMessage, RabbitRouter
from pydantic import ValidationError

from services.processor.parsing import ParsedMail, parse
from shared import metrics
from shared.broker import publish
from shared.errors import NotFound, Permanent
from shared.models.desk import DeskFilter
from shared.models.messages import MailReceived, OutgoingMail
from shared.models.records import FailedMail, ReplayRecord
from shared.retry import ERROR_HEADER
from shared.runtime import Runtime
from shared.topology import (
    CONSUMER_CHANNEL,
    DLX_EXCHANGE,
    MAIL_OUTGOING,
    MAIL_RECEIVED,
    PROCESSOR_FAILED,
    SENDER_FAILED,
)

log = logging.getLogger(__name__)

REQUEUE_PAUSE_S = 1.0


@dataclass(frozen=True)
class ReplayResult:
    """What one replay did."""

    failed_id: str
    replayed: bool
    note: str


_BROKER_REASONS = {
    "delivery_limit": "its delivery limit was reached",
    "rejected": "a consumer rejected it without a reason",
    "expired": "it expired in its queue",
    "maxlen": "its queue was full",
}


def _deaths(headers: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in headers.get("x-death") or [] if isinstance(d, dict)]


def _death_count(headers: dict[str, Any]) -> int:
    return sum(int(d.get("count", 1)) for d in _deaths(headers))


def _broker_reason(headers: dict[str, Any]) -> str:
    """Why the broker dead-lettered a message that carries no reason of ours (``x-death``)."""
    deaths = _deaths(headers)
    why = str(deaths[0].get("reason", "")) if deaths else ""
    cause = _BROKER_REASONS.get(why, f"reason {why!r}" if why else "no reason recorded")
    return f"dead-lettered by the broker: {cause} ({_death_count(headers)} time(s))"


async def record_dead_letter(
    rt: Runtime, *, routing_key: str, body: dict[str, Any], headers: dict[str, Any]
) -> FailedMail | None:
    """Put one dead letter on the desk with the reason its service gave (None: the mail was
    processed after all, so it does not belong on the desk)."""
    deaths = _death_count(headers)
    carried = headers.get(ERROR_HEADER)
    reason = str(carried) if carried else None
    if routing_key == MAIL_RECEIVED:
        msg = MailReceived.model_validate(body)
        sender = subject = None
        try:
            raw = await rt.store.raw_emails.get(raw_id=msg.raw_id)
            if raw.status == "processed":
                log.info(
                    "dead letter of a processed mail: not put on the desk",
                    extra={"raw_id": msg.raw_id, "case": raw.case_number, "error": reason},
                )
                return None
            error, attempts = reason or raw.error, raw.attempts
            sender, subject = _sender_and_subject(await rt.store.raw_emails.data(raw_id=raw.id))
        except NotFound:
            error, attempts = f"raw mail {msg.raw_id} is not stored", 0
        return await rt.store.desk.record(
            failed_id=f"processor:{msg.raw_id}",
            queue=PROCESSOR_FAILED.name,
            routing_key=routing_key,
            ref=msg.raw_id,
            body=body,
            account=msg.account,
            error=error or _broker_reason(headers),
            attempts=attempts,
            sender=sender,
            subject=subject,
        )
    out = OutgoingMail.model_validate(body)
    entry = await rt.store.outbox.get(mail_id=out.mail_id)
    return await rt.store.desk.record(
        failed_id=f"sender:{out.mail_id}",
        queue=SENDER_FAILED.name,
        routing_key=routing_key,
        ref=out.mail_id,
        body=body,
        account=None,
        error=reason or (entry.error if entry and entry.error else None) or _broker_reason(headers),
        attempts=entry.attempts if entry else deaths,
    )


async def replay(rt: Runtime, *, failed_id: str, who: str) -> ReplayResult:
    """Re-publish one failed mail to its work queue (once, however often it is called)."""
    taken = await rt.store.desk.take_for_replay(failed_id=failed_id)
    if taken is None:
        # Only now read the entry: to say why, or to raise NotFound for an unknown id.
        entry = await rt.store.desk.get(failed_id=failed_id)
        note = f"not replayed: status is {entry.status}"
        await rt.store.desk.audit(
            record=ReplayRecord(failed_id=failed_id, who=who, outcome="skipped", note=note)
        )
        return ReplayResult(failed_id, False, note)
    message: MailReceived | OutgoingMail
    if taken.routing_key == MAIL_RECEIVED:
        message = MailReceived.model_validate(taken.body)
        await rt.store.raw_emails.set_status(
            raw_id=message.raw_id, status="replayed", only_from=("failed",)
        )
    else:
        message = OutgoingMail.model_validate(taken.body)
    await publish(rt.broker, message, routing_key=taken.routing_key)
    await rt.store.desk.audit(record=ReplayRecord(failed_id=failed_id, who=who, outcome="replayed"))
    log.info("failed mail replayed", extra={"failed_id": failed_id, "who": who})
    return ReplayResult(failed_id, True, "replayed")


async def delete(rt: Runtime, *, failed_id: str, who: str) -> bool:
    """Take an entry off the desk (the raw mail stays stored); audited."""
    await rt.store.desk.get(failed_id=failed_id)
    deleted = await rt.store.desk.mark_deleted(failed_id=failed_id)
    await rt.store.desk.audit(
        record=ReplayRecord(
            failed_id=failed_id,
            who=who,
            action="delete",
            outcome="deleted" if deleted else "skipped",
            note="" if deleted else "already deleted",
        )
    )
    return deleted


async def raw_of(rt: Runtime, *, failed_id: str) -> bytes:
    """The raw mail of a processor desk entry, exactly as fetched."""
    entry = await rt.store.desk.get(failed_id=failed_id)
    if entry.routing_key != MAIL_RECEIVED:
        raise NotFound(f"{failed_id} is an outgoing mail; it has no fetched raw form")
    return await rt.store.raw_emails.data(raw_id=entry.ref)


async def parse_entry(rt: Runtime, *, failed_id: str) -> ParsedMail | str:
    """The parsed mail of a processor desk entry, or why it does not parse."""
    data = await raw_of(rt, failed_id=failed_id)
    try:
        return parse(data)
    except Permanent as exc:
        return str(exc)


async def parsed_of(rt: Runtime, *, failed_id: str) -> dict[str, Any]:
    """The parsed form of a processor desk entry, or why it does not parse (as JSON)."""
    parsed = await parse_entry(rt, failed_id=failed_id)
    if isinstance(parsed, str):
        return {"error": parsed}
    dumped: dict[str, Any] = parsed.model_dump(mode="json", by_alias=True)
    return dumped


def _sender_and_subject(data: bytes) -> tuple[str | None, str | None]:
    # Only the header block matters here; a mail too broken for this is still recorded.
    try:
        headers = BytesHeaderParser(policy=policy.default).parsebytes(data[:65536])
        sender, subject = headers["From"], headers["Subject"]
    except Exception:
        return None, None
    return (str(sender) if sender else None, str(subject) if subject else None)


REPLAY_ALL_LIMIT = 10_000
"""At most this many entries are replayed by one "replay all" (run it again for more)."""


async def replay_all(
    rt: Runtime, *, who: str, filter: DeskFilter, limit: int = REPLAY_ALL_LIMIT
) -> list[ReplayResult]:
    """Replay every failed entry matching ``filter`` (its status is taken as ``failed``: only
    those can be replayed), at most ``limit``, most recent first."""
    waiting = filter.model_copy(update={"status": "failed"})
    results: list[ReplayResult] = []
    after = None
    while len(results) < limit:
        page = await rt.store.desk.page(
            filter=waiting, after=after, limit=min(200, limit - len(results))
        )
        results += [await replay(rt, failed_id=e.id, who=who) for e in page.entries]
        if page.next is None:
            break
        after = page.next
    return results


async def count_matching(rt: Runtime, *, filter: DeskFilter, at_most: int | None = None) -> int:
    """How many failed entries a replay of all matching ``filter`` would replay; with
    ``at_most``, counting stops there (a count of every entry reads every entry)."""
    waiting = filter.model_copy(update={"status": "failed"})
    if at_most is None:
        return await rt.store.desk.count_matching(filter=waiting)
    counted, after = 0, None
    while counted < at_most:
        page = await rt.store.desk.page(filter=waiting, after=after, limit=at_most - counted)
        counted += len(page.entries)
        if page.next is None:
            break
        after = page.next
    return counted


async def case_of(rt: Runtime, *, entry: FailedMail) -> int | None:
    """The case of a desk entry: for incoming mail the one it went to once it was processed
    (after a replay), for outgoing mail the one it was written on; else None."""
    if entry.routing_key != MAIL_RECEIVED:
        number = entry.body.get("case_number")
        return number if isinstance(number, int) else None
    return await rt.store.cases.case_of_raw(raw_id=entry.ref)


def build_router(rt: Runtime) -> RabbitRouter:
    """The desk's consumers of both dead-letter queues.

    A dead letter has nowhere further to go, so on an error (MongoDB down) it is requeued
    after a pause instead of being rejected.
    """
    router = RabbitRouter()

    async def consume(routing_key: str, body: dict[str, Any], message: RabbitMessage) -> None:
        try:
            await record_dead_letter(
                rt, routing_key=routing_key, body=body, headers=dict(message.headers)
            )
        except ValidationError as exc:
            await rt.store.desk.record(
                failed_id=f"unreadable:{message.message_id}",
                queue=f"{routing_key} dead letters",
                routing_key=routing_key,
                ref="",
                body=body,
                account=None,
                error=f"unreadable dead letter: {exc.error_count()} validation errors",
                attempts=_death_count(dict(message.headers)),
            )
        except Exception:
            log.exception("dead letter not recorded, requeueing")
            await asyncio.sleep(REQUEUE_PAUSE_S)
            raise

    @router.subscriber(
        PROCESSOR_FAILED,
        DLX_EXCHANGE,
        title="processor.failed",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=CONSUMER_CHANNEL,
    )
    async def processor_failed(body: dict[str, Any], message: RabbitMessage) -> None:
        await consume(MAIL_RECEIVED, body, message)
        metrics.mail_failed("processor")

    @router.subscriber(
        SENDER_FAILED,
        DLX_EXCHANGE,
        title="sender.failed",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=CONSUMER_CHANNEL,
    )
    async def sender_failed(body: dict[str, Any], message: RabbitMessage) -> None:
        await consume(MAIL_OUTGOING, body, message)
        metrics.mail_failed("sender")

    return router
