"""Round trips per mail on the processor's common paths (counts, never time).

A new mail opening a case with its acknowledgement, and a follow-up attached to an existing
case, each take one publisher-confirm round trip (the event and the acknowledgement in one
batch) and at most the MongoDB commands below. Issue 18 aims at three; what the rest are (by
command and collection) is printed when a count is exceeded. Before the batch, the counter
the folded copy note and the thread read once: 12 and 10 commands, 2 and 1 confirm round
trips.
"""

from __future__ import annotations

import asyncio

from services.processor.process import process_mail
from shared.runtime import Runtime
from tests.integration.processor.helpers import outgoing, store_raw
from tests.round_trips import counting
from tests.support import make_mail

MAILS = 6
NEW_CASE_COMMANDS = 11
"""Start (update and read of the raw mail), the scripts' lookups (earlier copy, answers this
hour, suppression list), the copy claim, the case number and the case, the message, the
answer counted, the status."""
FOLLOW_UP_COMMANDS = 8
"""Start (2), the scripts' lookups (one read of the thread answers the case of In-Reply-To
and the earlier copy; answers this hour; suppression list), the message, the case's
``updated_at``, the status."""


async def test_new_cases_and_follow_ups_take_few_round_trips(rt: Runtime) -> None:
    warm, _ = make_mail(subject="Warm-up", sender="w@example.org")
    await process_mail(rt, await store_raw(rt, warm, "0:1"))  # first case number, indexes
    new = [make_mail(subject=f"Request {i}", sender=f"c{i}@example.org") for i in range(MAILS)]
    announced = [await store_raw(rt, data, f"1:{i}") for i, (data, _) in enumerate(new)]
    with counting() as opening:
        outcomes = [await process_mail(rt, msg) for msg in announced]
    replies = [
        make_mail(subject="thanks", sender=f"c{i}@example.org", in_reply_to=mid)[0]
        for i, (_, mid) in enumerate(new)
    ]
    announced = [await store_raw(rt, data, f"2:{i}") for i, data in enumerate(replies)]
    with counting() as following:
        follow_ups = [await process_mail(rt, msg) for msg in announced]

    assert [o.decision.action for o in outcomes] == ["new_case"] * MAILS
    assert [o.case_number for o in follow_ups] == [o.case_number for o in outcomes]
    assert len(await outgoing(rt)) == MAILS + 1  # one acknowledgement per new case
    print("new case + acknowledgement:", opening.per_mail(MAILS))
    print("follow-up:", following.per_mail(MAILS))
    assert opening.command_count <= NEW_CASE_COMMANDS * MAILS, opening.per_mail(MAILS)
    assert opening.confirms == MAILS and opening.messages == 2 * MAILS, opening.per_mail(MAILS)
    assert following.command_count <= FOLLOW_UP_COMMANDS * MAILS, following.per_mail(MAILS)
    assert following.confirms == following.messages == MAILS, following.per_mail(MAILS)


AT_ONCE = 16
AT_ONCE_COMMANDS = 3
"""Issue 18's aim for the common paths, met when mails are processed together: the store
group-commits what they read and write at one moment (``shared.store._batch``)."""


async def test_mails_processed_together_share_their_commands(rt: Runtime) -> None:
    warm, _ = make_mail(subject="Warm-up", sender="w@example.org")
    await process_mail(rt, await store_raw(rt, warm, "0:1"))
    new = [make_mail(subject=f"Burst {i}", sender=f"b{i}@example.org") for i in range(AT_ONCE)]
    announced = [await store_raw(rt, data, f"3:{i}") for i, (data, _) in enumerate(new)]
    with counting() as together:
        outcomes = await asyncio.gather(*(process_mail(rt, msg) for msg in announced))
    replies = [
        make_mail(subject="thanks", sender=f"b{i}@example.org", in_reply_to=mid)[0]
        for i, (_, mid) in enumerate(new)
    ]
    announced = [await store_raw(rt, data, f"4:{i}") for i, data in enumerate(replies)]
    with counting() as following:
        follow_ups = await asyncio.gather(*(process_mail(rt, msg) for msg in announced))

    numbers = sorted(o.case_number or 0 for o in outcomes)
    assert numbers == list(range(numbers[0], numbers[0] + AT_ONCE))  # distinct, none wasted
    assert [o.case_number for o in follow_ups] == [o.case_number for o in outcomes]
    assert len(await outgoing(rt)) == AT_ONCE + 1
    print("new cases together:", together.per_mail(AT_ONCE))
    print("follow-ups together:", following.per_mail(AT_ONCE))
    assert together.command_count <= AT_ONCE_COMMANDS * AT_ONCE, together.per_mail(AT_ONCE)
    assert following.command_count <= AT_ONCE_COMMANDS * AT_ONCE, following.per_mail(AT_ONCE)
