"""Per-recipient states and the mail's status derived from them."""

from __future__ import annotations

from datetime import UTC, datetime

from services.sender import outcome
from services.sender.transport import Refusal, SendResult

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_initial_recipients_are_queued_once_each() -> None:
    rcpts = outcome.initial_recipients(["a@x.org", "B@x.org", "A@X.org"])
    assert [(r.address, r.state) for r in rcpts] == [("a@x.org", "queued"), ("B@x.org", "queued")]


def test_a_reply_sets_sent_deferred_and_failed_by_code() -> None:
    rcpts = outcome.initial_recipients(["a@x.org", "b@x.org", "c@x.org"])
    reply = SendResult(
        "250 ok", refused={"B@x.org": Refusal(451, "later"), "c@x.org": Refusal(550, "no")}
    )
    after = outcome.apply_reply(rcpts, reply, now=NOW)
    assert [(r.state, r.reply) for r in after] == [
        ("sent", "250 ok"),
        ("deferred", "451 later"),
        ("failed", "550 no"),
    ]
    summary = outcome.summarise(after)
    assert (summary.status, summary.retry) == ("queued", True)
    assert outcome.pending(after) == ["b@x.org"]


def test_a_sent_recipient_is_never_touched_again() -> None:
    first = outcome.apply_reply(
        outcome.initial_recipients(["a@x.org"]), SendResult("250 ok"), now=NOW
    )
    after = outcome.apply_error(first, "failed", "554 whatever", now=NOW)
    assert after == first and outcome.summarise(after).status == "sent"


def test_partly_failed_is_sent_with_the_refusals_named() -> None:
    reply = SendResult("250 ok", refused={"b@x.org": Refusal(550, "unknown")})
    after = outcome.apply_reply(outcome.initial_recipients(["a@x.org", "b@x.org"]), reply, now=NOW)
    summary = outcome.summarise(after)
    assert (summary.status, summary.retry) == ("sent", False)
    assert summary.error == "refused recipients: b@x.org: 550 unknown"


def test_nobody_reached_is_failed_and_a_replay_reopens_the_failed() -> None:
    reply = SendResult(None, refused={"a@x.org": Refusal(550, "unknown")})
    after = outcome.apply_reply(outcome.initial_recipients(["a@x.org"]), reply, now=NOW)
    assert outcome.summarise(after).status == "failed"
    assert outcome.pending(outcome.reopen(after)) == ["a@x.org"]
