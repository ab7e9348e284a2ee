"""``mailroom simulate FILE --json``: the contract of ARCHITECTURE.md, and nothing changes."""

from __future__ import annotations

import json
from pathlib import Path

from pymongo import AsyncMongoClient

from tests.support import make_mail
from tests.support_cli import cli_env, mailroom

CONTRACT_KEYS = {
    "message_id",
    "in_reply_to",
    "references",
    "subject",
    "date",
    "from",
    "to",
    "cc",
    "reply_to",
    "text",
    "html",
    "attachments",
    "classification",
    "bounce",
    "decision",
    "defects",
}


async def test_simulate_prints_the_contract_and_changes_nothing(
    rabbit_url: str, mongo_url: str, mongo_db_name: str, tmp_path: Path
) -> None:
    raw, mid = make_mail(
        subject="Re: Printer [Case#10001]",
        sender="Ida <ida@example.org>",
        in_reply_to="<unknown@example.org>",
    )
    eml = tmp_path / "mail.eml"
    eml.write_bytes(raw)
    env = cli_env(
        rabbit_url=rabbit_url,
        mongo_url=mongo_url,
        database=mongo_db_name,
        secret_key="simulate-secret-key",
    )
    result = mailroom("simulate", str(eml), "--json", env=env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) >= CONTRACT_KEYS
    assert out["message_id"] == mid and out["subject"] == "Re: Printer [Case#10001]"
    assert out["from"] == [{"name": "Ida", "address": "ida@example.org", "replyable": True}]
    assert out["classification"] == "normal" and out["bounce"] is None
    assert out["decision"]["action"] == "new_case" and out["decision"]["rule"] == "new"
    assert any("10001" in note and "does not exist" in note for note in out["notes"])

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    try:
        db = client[mongo_db_name]
        for collection in ("cases", "messages", "raw_emails", "outbox"):
            assert await db[collection].count_documents({}) == 0, collection
    finally:
        await client.close()

    human = mailroom("simulate", str(eml), env=env)
    assert human.returncode == 0 and "decision: new_case" in human.stdout


def test_simulate_reports_a_file_that_is_not_a_mail(
    rabbit_url: str, mongo_url: str, mongo_db_name: str, tmp_path: Path
) -> None:
    eml = tmp_path / "empty.eml"
    eml.write_bytes(b"")
    env = cli_env(
        rabbit_url=rabbit_url,
        mongo_url=mongo_url,
        database=mongo_db_name,
        secret_key="simulate-secret-key",
    )
    out = json.loads(mailroom("simulate", str(eml), "--json", env=env).stdout)
    assert out["decision"]["action"] == "reject" and "unparseable" in out["error"]
