"""One read of a mail's thread answers the scripts' lookups by Message-ID; a long thread
is asked about precisely instead."""

from __future__ import annotations

from services.processor.marks import MailThread
from shared.models.records import CaseMessage
from shared.runtime import Runtime


async def test_a_thread_longer_than_the_limit_is_not_read_whole(rt: Runtime) -> None:
    cases = rt.store.cases
    for i in range(3):
        message = CaseMessage.model_validate(
            {"case_number": 7, "direction": "in", "message_id": "<t@x>", "raw_id": f"r{i}",
             "subject": "s"}
        )  # fmt: skip
        await cases.add_message(message=message, touch_case=False)
    whole = await cases.messages_with_ids(message_ids=["<t@x>", "<other@x>"], limit=5)
    assert whole is not None and sorted(m.raw_id or "" for m in whole) == ["r0", "r1", "r2"]
    assert await cases.messages_with_ids(message_ids=["<t@x>"], limit=2) is None
    thread = MailThread(cases, frozenset({"<t@x>"}))
    assert thread.ids and await thread.messages(["<not-in-the-thread@x>"]) is None
