"""A big mail over the size limit is processed in little more memory than its own size: it
is streamed from GridFS and its big parts are never decoded (issue 14, defect 7)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap

from shared.runtime import Runtime
from tests.integration.processor.helpers import store_raw

ATTACHMENT = 24 * 1024 * 1024

# Runs in a process of its own, so that its peak resident memory measures only the mail.
PROCESS_ONE = textwrap.dedent(
    """
    import asyncio, json, sys
    from services.processor.process import process_mail
    from shared.models.messages import MailReceived
    from shared.runtime import Runtime
    from tests.support import server_settings

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024
        raise LookupError(field)

    async def main():
        rabbit, mongo, db, raw_id = sys.argv[1:]
        rt = Runtime(server_settings(
            rabbit_url=rabbit, mongo_url=mongo, database=db, instance="big-mail"))
        await rt.start_store()
        await rt.start_broker()
        msg = MailReceived(raw_id=raw_id, account="support", source_key="1:1")
        await process_mail(rt, msg)  # warm up: imports, connections, first parse
        await rt.store.raw_emails.set_status(raw_id=raw_id, status="stored")
        before = status("VmRSS:")
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # the peak starts again from here
        outcome = await process_mail(rt, msg)
        print(json.dumps({"growth": status("VmHWM:") - before, "case": outcome.case_number}))
        await rt.broker.stop()
        await rt.close()

    asyncio.run(main())
    """
)


async def test_a_big_mail_over_the_limit_takes_at_most_twice_its_size(
    rt: Runtime, rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    await rt.store.properties.put(
        module="processor", key="max_mail_size_bytes", value=1_000_000, who="test"
    )
    boundary = b"BIGMAILBOUNDARY"
    line = b"QUFB" * 19 + b"\r\n"  # base64, 76 characters a line
    mail = b"".join(
        [
            b"From: Big <big@example.org>\r\nTo: support@example.com\r\nSubject: Big\r\n",
            b"Message-ID: <big@example.org>\r\nMIME-Version: 1.0\r\n",
            b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n",
            b"--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n",
            b"--" + boundary + b"\r\nContent-Type: application/octet-stream\r\n",
            b"Content-Disposition: attachment; filename=big.bin\r\n",
            b"Content-Transfer-Encoding: base64\r\n\r\n",
            line * (ATTACHMENT // len(line)),
            b"--" + boundary + b"--\r\n",
        ]
    )
    msg = await store_raw(rt, mail, "1:1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PROCESS_ONE,
        rabbit_url,
        mongo_url,
        mongo_db_name,
        msg.raw_id,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    result = json.loads(out.decode().strip().splitlines()[-1])
    size = len(mail)
    print(f"mail {size / 2**20:.1f} MiB, peak RSS growth {result['growth'] / 2**20:.1f} MiB")
    assert result["case"] is not None
    assert result["growth"] <= 2 * size
    stored = await rt.store.cases.messages(case_number=result["case"])
    assert [a.omitted for a in stored[0].attachments] == [True]
