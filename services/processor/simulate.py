"""Dry run of the processor for one mail: parse, run every enabled script, change nothing.

Lookups read the store (so matching sees real cases) but nothing is written and nothing is
published; the output follows the ``mailroom simulate --json`` contract of ARCHITECTURE.md.
"""

from __future__ import annotations

import re
from typing import Any

from services.processor.marks import StoreMarks
from services.processor.parsing import ParsedMail, parse
from services.processor.pipeline import run_scripts
from services.processor.process import StoreCaseLookup
from services.processor.scripts import CaseLookup, MarkLookup, NoMarks, ScriptContext
from shared.errors import MailRejected, Permanent
from shared.models.config import SystemConfig

# Defects that say the parser repaired the header block or an address (shown as findings).
_REPAIRS = re.compile(
    r"before the headers (?:removed|set apart)|broken fold|whitespace before the colon"
    r"|trailing dot|source route|byte-order mark"
)


async def simulate(
    data: bytes, *, config: SystemConfig, cases: CaseLookup, marks: MarkLookup | None = None
) -> dict[str, Any]:
    """What the processor would do with ``data``, as the contract's JSON object.

    ``marks`` answers the suppression list and earlier copies (without it the dry run knows
    neither). ``findings`` lists each decision the parser and scripts took on the way with its
    reason: sender fallback, header repairs, addresses that get no mail, bounce, automatic answer,
    complaint, second copy.
    """
    try:
        mail = parse(data)
    except Permanent as exc:
        return {"error": str(exc), "decision": _decision("reject", None, str(exc))}
    ctx = ScriptContext(config=config, cases=cases, marks=marks or NoMarks())
    try:
        decision = await run_scripts(mail, ctx)
        result = _decision(decision.action, decision.rule, decision.reason)
        result["case_number"] = decision.case_number
        result["duplicate_of"] = ctx.duplicate_of.raw_id if ctx.duplicate_of else None
    except MailRejected as exc:
        result = _decision("reject", None, str(exc))
    return {
        **_parsed(mail),
        "decision": result,
        "acknowledge": ctx.acknowledge and result["action"] == "new_case",
        "notes": ctx.notes,
        "findings": findings(mail, ctx),
        # What the scripts would send (never sent by a dry run).
        "send": [
            m.model_dump(mode="json", include={"script", "key", "kind", "to", "subject"})
            for m in ctx.outgoing
        ],
    }


def findings(mail: ParsedMail, ctx: ScriptContext) -> list[dict[str, str]]:
    """Each decision taken on the way, with its reason, for an operator."""
    found: list[tuple[str, str]] = []
    contact = mail.contact
    if mail.contact_source not in (None, "from") and contact is not None:
        source = str(mail.contact_source).replace("_", "-")
        found.append(("sender_fallback", f"no From: contact {contact.address} from {source}"))
    found += [("header_repair", d) for d in mail.defects if _REPAIRS.search(d)]
    everyone = [*mail.from_, *mail.reply_to, *mail.sender, *mail.to, *mail.cc]
    for address in dict.fromkeys(everyone):
        if not address.replyable:
            found.append(("not_replyable", f"{address.address} is kept but gets no mail"))
    if mail.bounce is not None:
        reply = f"; server said {mail.bounce.smtp_reply}" if mail.bounce.smtp_reply else ""
        found.append(("bounce", f"status {mail.bounce.status or 'unknown'}{reply}"))
    if mail.auto_reply_marker is not None:
        found.append(("auto_reply", f"automatic answer ({mail.auto_reply_marker}): never answered"))
    if mail.complaint is not None:
        who = mail.complaint.complainant or "an unnamed recipient"
        kind = mail.complaint.feedback_type
        found.append(("complaint", f"spam complaint ({kind}) from {who}: never answered"))
    found += [("suppress", f"{a} would go on the suppression list") for a in ctx.suppress]
    if ctx.duplicate_of is not None:
        first = ctx.duplicate_of
        found.append(
            (
                "duplicate",
                f"duplicate of {first.raw_id} (case {first.case_number}, "
                f"account {first.account or '?'})",
            )
        )
    return [{"kind": kind, "reason": reason} for kind, reason in found]


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
        "sender": data["sender"],
        "return_path": data["return_path"],
        "contact_source": data["contact_source"],
        "classification": data["classification"],
        "bounce": data["bounce"] if data["classification"] == "bounce" else None,
        "complaint": data["complaint"],
        "content_digest": data["content_digest"],
        "size": data["size"],
        "defects": data["defects"],
    }


__all__ = ["StoreCaseLookup", "StoreMarks", "findings", "simulate"]
