"""Spam complaints: ARF feedback reports (RFC 5965) about a mail we sent.

A report is ``multipart/report; report-type=feedback-report`` with a ``message/feedback-report``
part (its fields: Feedback-Type, User-Agent, Original-Mail-From, Original-Rcpt-To, Source-IP)
and the reported mail or its headers. Some mailbox providers leave out the ``report-type``
parameter; the ``message/feedback-report`` part alone is as clear a sign, and so is a plain
text part made of its fields (``Feedback-Type:`` first, with ``Version`` or ``User-Agent``), as
some feedback loops send it. What the report says
about the reported mail lets the processor tie it to our outgoing mail: its Message-ID and,
with VERP, the outbox id in the envelope sender.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser

from services.processor.parsing._bounce import (
    MAX_VERP_TOKENS,
    VERP,
    field,
    field_blocks,
    original_id,
)
from services.processor.parsing._decode import unescape_8bit
from services.processor.parsing._headers import RAW_POLICY
from services.processor.parsing._model import Complaint
from services.processor.parsing._parts import Body

_MAX_FIELD = 200
_FEEDBACK_START = re.compile(r"^Feedback-Type:[ \t]*\S", re.IGNORECASE | re.MULTILINE)
_TEXT_SAMPLE = 64 * 1024


def complaint_info(msg: Message, body: Body) -> Complaint | None:
    """What the mail reports as a spam complaint, or None when it is no feedback report."""
    report_type = str(msg.get_param("report-type") or "").lower()
    is_report = msg.get_content_type() == "multipart/report" and report_type == "feedback-report"
    fields = [b for part in body.feedback for b in field_blocks(part)]
    if not (is_report or fields):
        fields = _fields_in_text(body.text)
        if not fields:
            return None

    def first(name: str) -> str | None:
        found = next((value for b in fields if (value := field(b, name))), "")
        return found[:_MAX_FIELD] or None

    rcpt_to = first("Original-Rcpt-To")
    reported_to = next((_text(o, "To") for o in body.originals if o.get("To")), "")
    mail_from = first("Original-Mail-From")
    envelope = [mail_from or "", *(_text(o, "Return-Path") for o in body.originals)]
    tokens = [m.group(1) for value in envelope for m in VERP.finditer(value)]
    return Complaint(
        feedback_type=(first("Feedback-Type") or "abuse").lower(),
        complainant=(rcpt_to or reported_to).strip().strip("<>").strip()[:_MAX_FIELD] or None,
        original_message_id=original_id(body, ""),
        original_mail_from=mail_from.strip("<>") if mail_from else None,
        user_agent=first("User-Agent"),
        source_ip=first("Source-IP"),
        verp_tokens=list(dict.fromkeys(tokens))[:MAX_VERP_TOKENS],
    )


def _fields_in_text(texts: list[str]) -> list[Message]:
    """The feedback fields of a report whose ``message/feedback-report`` part was sent as plain
    text: a text part that starts with ``Feedback-Type:`` and carries the ARF ``Version`` or
    ``User-Agent`` (a person quoting one line does not)."""
    for text in texts:
        found = _FEEDBACK_START.search(text[:_TEXT_SAMPLE])
        if found is None:
            continue
        block = HeaderParser(policy=RAW_POLICY).parsestr(text[found.start() :])
        if block.get("Version") is not None or block.get("User-Agent") is not None:
            return [block]
    return []


def _text(msg: Message, name: str) -> str:
    return " ".join(unescape_8bit(str(msg.get(name, "")), name, []).split())
