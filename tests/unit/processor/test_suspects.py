"""A crash charges only the mail that caused it: redelivered mails whose processing had
started run alone, the one that crashes alone three times is the poison, the others are
re-published fresh before RabbitMQ's delivery limit (issue 14, defect 5)."""

from __future__ import annotations

import asyncio

from services.processor.suspects import (
    MAX_SOLO_CRASHES,
    REFRESH_AFTER,
    Turns,
    Verdict,
    verdict,
)
from shared.models.records import RawEmail


def raw(**fields: object) -> RawEmail:
    base = {"account": "a", "source_key": "1:1", "folder": "INBOX", "size": 1, "sha256": "x"}
    return RawEmail.model_validate({**base, **fields})


def test_a_first_delivery_is_never_suspect() -> None:
    assert verdict(raw(unfinished=5), redelivered=False, delivery_count=0) is Verdict.NORMAL


def test_a_redelivered_mail_whose_attempt_did_not_finish_is_a_suspect() -> None:
    assert verdict(raw(unfinished=1), redelivered=True, delivery_count=1) is Verdict.SUSPECT
    crashed = raw(unfinished=1, solo_runs=MAX_SOLO_CRASHES)
    assert verdict(crashed, redelivered=True, delivery_count=4) is Verdict.POISON
    done = raw(unfinished=1, status="processed")
    assert verdict(done, redelivered=True, delivery_count=4) is Verdict.NORMAL


def test_an_innocent_mail_is_refreshed_before_the_delivery_limit() -> None:
    assert verdict(raw(), redelivered=True, delivery_count=1) is Verdict.NORMAL
    assert verdict(raw(), redelivered=True, delivery_count=REFRESH_AFTER) is Verdict.REFRESH


async def test_a_suspect_runs_alone() -> None:
    turns = Turns()
    log: list[str] = []

    async def ordinary(name: str) -> None:
        async with turns.shared():
            log.append(f"{name}+")
            await asyncio.sleep(0.01)
            log.append(f"{name}-")

    async def suspect() -> None:
        async with turns.alone():
            log.append("S+")
            await asyncio.sleep(0.01)
            log.append("S-")

    first = asyncio.create_task(ordinary("a"))
    await asyncio.sleep(0)
    await asyncio.gather(suspect(), ordinary("b"), first)
    s_in, s_out = log.index("S+"), log.index("S-")
    assert s_out == s_in + 1  # nothing ran while the suspect did
    assert log.index("a-") < s_in
