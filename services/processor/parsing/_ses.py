"""Amazon SES notifications (JSON, mailed through SNS or as raw message delivery).

flufl.bounce reads MTA text and has no detector for them, so this one is ours: a text body
that holds a JSON object with ``notificationType`` (or ``eventType``) ``Bounce`` or
``Complaint`` is read as one. The notification names our mail by its ``Message-ID`` header
(``mail.commonHeaders.messageId``, else ``mail.headers``) and, with VERP, by the envelope
sender it was sent with (``mail.source``); it names the bounced or complaining recipient and,
for bounces, the status and the remote server's diagnostic.
"""

from __future__ import annotations

import json
import re
from typing import Any

from services.processor.parsing._bounce import MAX_VERP_TOKENS, VERP
from services.processor.parsing._model import BounceInfo, Complaint

# Inside an SNS envelope (an "Email-JSON" subscription) the notification is a JSON string, its
# quotes escaped: \"notificationType\":\"Bounce\".
_MARK = re.compile(r'\\?"(?:notificationType|eventType)\\?"\s*:\s*\\?"(Bounce|Complaint)\\?"')
_MAX_JSON = 256 * 1024
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,998}>")


def ses_notification(text: str) -> BounceInfo | Complaint | None:
    """The bounce or complaint an SES notification in ``text`` reports, or None."""
    if not _MARK.search(text[:_MAX_JSON]):
        return None
    found = _json_object(text[:_MAX_JSON])
    if found is None:
        return None
    if isinstance(found.get("Message"), str):  # SNS envelope around the notification
        inner = _json_object(found["Message"])
        found = inner if inner is not None else found
    kind = found.get("notificationType") or found.get("eventType")
    mail = _dict(found.get("mail"))
    original = _message_id(mail)
    tokens = [m.group(1) for m in VERP.finditer(_str(mail.get("source")) or "")][:MAX_VERP_TOKENS]
    if kind == "Complaint":
        complaint = _dict(found.get("complaint"))
        return Complaint(
            feedback_type=str(complaint.get("complaintFeedbackType") or "abuse"),
            complainant=_first_address(complaint.get("complainedRecipients")),
            original_message_id=original,
            original_mail_from=_str(mail.get("source")),
            user_agent=_str(complaint.get("userAgent")),
            verp_tokens=tokens,
        )
    if kind != "Bounce":
        return None
    bounce = _dict(found.get("bounce"))
    recipients = [_dict(r) for r in _list(bounce.get("bouncedRecipients"))]
    first = recipients[0] if recipients else {}
    diagnostic = _str(first.get("diagnosticCode"))
    reply = diagnostic.split(";", 1)[1].strip() if diagnostic and ";" in diagnostic else diagnostic
    transient = bounce.get("bounceType") == "Transient"
    return BounceInfo(
        recipient=_str(first.get("emailAddress")),
        status=_str(first.get("status")),
        action=_str(first.get("action")) or ("delayed" if transient else "failed"),
        original_message_id=original,
        diagnostic=diagnostic,
        smtp_reply=reply,
        verp_tokens=tokens,
    )


def _json_object(text: str) -> dict[str, Any] | None:
    # SNS mails add an unsubscribe footer after the JSON: decode the object where it starts.
    start = text.find("{")
    if start < 0:
        return None
    try:
        found, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _message_id(mail: dict[str, Any]) -> str | None:
    common = _dict(mail.get("commonHeaders")).get("messageId")
    values = [common] + [
        h.get("value") for h in map(_dict, _list(mail.get("headers")))
        if str(h.get("name", "")).lower() == "message-id"
    ]  # fmt: skip
    for value in values:
        found = _MESSAGE_ID.search(str(value or ""))
        if found:
            return found.group(0)
    return None


def _first_address(value: object) -> str | None:
    return next((_str(_dict(r).get("emailAddress")) for r in _list(value)), None)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str | None:
    return str(value)[:500] if isinstance(value, str | int) and str(value) else None
