"""Dry run of the processor for one mail: parse, run every enabled script, change nothing.

Lookups read the store (so matching sees real cases) but nothing is written and nothing is
published; the output follows the ``mailroom simulate --json`` contract of ARCHITECTURE.md.
"""

from __future__ import annotations

from typing import Any

from services.processor.parsing import ParsedMail, parse
from services.processor.pipeline import run_scripts
from services.processor.process import StoreCaseLookup
from services.processor.scripts import CaseLookup, ScriptContext
from shared.errors import MailRejected, Permanent
from shared.models.config import SystemConfig


async def simulate(data: bytes, *, config: SystemConfig, cases: CaseLookup) -> dict[str, Any]:
    """What the processor would do with ``data``, as the contract's JSON object."""
    try:
        mail = parse(data)
    except Permanent as exc:
        return {"error": str(exc), "decision": _decision("reject", None, str(exc))}
    ctx = ScriptContext(config=config, cases=cases)
    try:
        decision = await run_scripts(mail, ctx)
        result = _decision(decision.action, decision.rule, decision.reason)
        result["case_number"] = decision.case_number
    except MailRejected as exc:
        result = _decision("reject", None, str(exc))
    return {
        **_parsed(mail),
        "decision": result,
        "acknowledge": ctx.acknowledge and result["action"] == "new_case",
        "notes": ctx.notes,
        # What the scripts would send (never sent by a dry run).
        "send": [
            m.model_dump(mode="json", include={"script", "key", "kind", "to", "subject"})
            for m in ctx.outgoing
        ],
    }


def _decision(action: str, rule: str | None, reason: str) -> dict[str, Any]:
    return {"action": action, "rule": rule, "reason": reason}


def _parsed(mail: ParsedMail) -> dict[str, Any]:
    data = mail.model_dump(mode="json", by_alias=True)
    return {
        "message_id": data["message_id"],
        "in_reply_to": data["in_reply_to"],
        "references": data["references"],
        "subject": data["subject"],
        "date": data["date"],
        "from": data["from"],
        "to": data["to"],
        "cc": data["cc"],
        "reply_to": data["reply_to"],
        "text": data["text"],
        "html": data["html"],
        "attachments": [
            {k: a[k] for k in ("filename", "content_type", "size", "content_id")}
            for a in data["attachments"]
        ],
        "classification": data["classification"],
        "bounce": data["bounce"] if data["classification"] == "bounce" else None,
        "size": data["size"],
        "defects": data["defects"],
    }


__all__ = ["StoreCaseLookup", "simulate"]
