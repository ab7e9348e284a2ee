"""Bounces: RFC 3464 delivery-status reports first, then the formats MTAs invent.

Non-standard bounces are only looked at when the sender or subject says "bounce" (a
MAILER-DAEMON or postmaster sender, an "Undelivered Mail Returned to Sender" subject, but not
a person's "Fwd:" of one): ``flufl.bounce``'s heuristic detectors find addresses in any text
and would misread ordinary mail otherwise.

Who bounced comes from ``flufl.bounce`` (GNU Mailman's detectors: qmail, Exim, Postfix,
Sendmail-style "simple match" texts incl. Lotus Notes and carriers, Exchange, GroupWise,
Yahoo, AOL, ...). Ours, because flufl.bounce lacks them: the wording of Courier, OpenSMTPD,
Apache James, Exchange legacy "#5.1.1" reports and list managers (``_FAILED_ADDRESS``, used
when no detector found an address), the status, the SMTP reply and the reason (flufl.bounce
returns addresses only), and Amazon SES JSON notifications (``_ses.py``).

The status is taken only from an RFC 3464 ``Status:`` field or from an enhanced status code
(RFC 3463) that stands in an SMTP reply ("550 5.1.1", "550-5.1.1", "#5.1.1"): a version
number in a banner ("Postfix v4.6.1") is no status. Of several, the most specific wins
(5.1.1 over the generic 5.0.0 a Status field often carries beside a specific reply).
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser

from flufl.bounce import all_failures

from services.processor.parsing._decode import unescape_8bit
from services.processor.parsing._headers import MESSAGE_ID, RAW_POLICY
from services.processor.parsing._model import BounceInfo
from services.processor.parsing._parts import Body

_BLANK_LINE = re.compile(r"\r?\n\s*\r?\n")
_DAEMON = re.compile(
    r"mailer[-_ ]?daemon|post_?master|mail delivery (subsystem|system)|microsoftexchange"
    r"|mail administrator|mdaemon|courier mail server|system administrator"
    # A From of <> (the null sender) is written by nothing but mail software.
    r"|<\s*>",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|delivery (status notification|failure|has failed|failed)"
    r"|not delivered|non-?delivery"
    r"|mail delivery failed|failure notice|could not be delivered|non remis|unzustellbar"
    r"|nicht zustellbar|no se puede entregar|delivery incomplete|rejected:|warning: could not"
    r"|mail delivery status|delivery status notification|undelivered|returned to sender"
    # Japanese and Chinese carriers and providers: "配信エラー", "配信不能", "退信", "投递失败".
    r"|配信(?:エラー|不能|失敗)|送信エラー|退信|投递失败",
    re.IGNORECASE,
)
# What a server writes when it stops retrying: the failure is final, whatever its last status.
_GAVE_UP = re.compile(
    r"not going to try again|giving up|gave up|retry time(?:out)? (?:was )?(?:exceeded|reached)"
    r"|too long in the queue|in the queue too long|permanent(?:ly)? (?:error|failure|failed)",
    re.IGNORECASE,
)
# A person forwarding a bounce to ask about it ("Fwd: Undelivered Mail Returned to Sender")
# wrote a mail, not a bounce.
_FORWARDED = re.compile(r"\s*(?:fwd?|wg|tr|rv|i|doorst)\s*:", re.IGNORECASE)
_STATUS_FIELD = re.compile(r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3})(?![\w.])")
# An enhanced status code (RFC 3463) only where one is meant: after an SMTP reply code
# ("550 5.1.1", "550-5.1.1", Exchange's "#550 5.1.1" and "#5.1.1") or in a Status: field.
# Anywhere else "4.6.1" is as likely a product version in a banner or a list-manager footer.
_ENHANCED = re.compile(
    r"(?:(?<![\w.])[245]\d\d[ -]#?|#|^[ \t]*Status:[ \t]*)([245]\.\d{1,3}\.\d{1,3})(?![\w.])"
    r"|\(#([245]\.\d{1,3}\.\d{1,3})\)",
    re.MULTILINE | re.IGNORECASE,
)
# A line quoting a server's reply: a 4xx/5xx code followed by text (not a version, a date or
# a phone number "480-624-2500"), with the indented lines that continue it (Postfix folds
# "552 5.2.2\n    Mailbox full").
_SMTP_REPLY = re.compile(
    r"(?<![\w.:/-])[45]\d\d(?:[ -]#?[245]\.\d{1,3}\.\d{1,3})?(?: |-(?!\d))[^\n]*"
    r"(?:\n[ \t]+\S[^\n]*)*"
)
# The reason a bounce without a quoted SMTP reply gives: Lotus Notes' "because:" block, a
# "Reason:" line, "user@host: mailbox unavailable", qmail's line under "<user@host>:".
_REASON = re.compile(
    r"^[ \t(]*(?:because|reason|grund|raison|motivo)[ \t]*:[ \t]*(?:\n[ \t]*)*(\S[^\n]*)"
    r"|^<?[^<>\s:]+@[^<>\s:]+>?:[ \t]*\n?[ \t]*([^\s<>][^\n]*)",
    re.IGNORECASE | re.MULTILINE,
)
_QUOTED_ID = re.compile(r"^[> \t]*Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
# "<user@host>: ..." (Postfix, qmail, Yahoo), Exim's "The following address(es) failed:",
# Exchange's "The following recipient(s) cannot be reached:" and the like, each followed by the
# address; "user@host: 550 ..." (OpenSMTPD), "user@host: mailbox unavailable" and "user@host:"
# alone on its line (GMX, Exim's translations).
_FAILED_ADDRESS = re.compile(
    r"^<([^<>\s]+@[^<>\s]+)>:"
    r"|(?:following address(?:\(es\))? failed|recipient\(s\) cannot be reached"
    r"|did not reach the following recipient\(s\)|failed recipient\(s\)"
    r"|had permanent fatal errors -+|was not delivered to"
    r"|delivery has failed to these recipients or groups|delivered to the following address(?:es)?"
    r"|following recipient failed permanently)"
    r":?\s+<?([^<>\s]+@[^<>\s]+?)>?\s"
    r"|^(?:recipient|original-recipient|final-recipient):\s*(?:rfc822;\s*)?<?([^<>\s]+@[^<>\s]+?)>?\s"
    # The recipient line of bounces written in other languages ("宛先: user@host"; the colon may
    # be the full-width one).
    r"|^[ \t]*(?:宛先|收件人|收件者|Empfänger|Destinataire|Destinatario|Получатель)[ \t]*[:\uff1a]"
    r"[ \t]*<?([^<>\s]+@[^<>\s]+?)>?\s"
    r"|^([^<>\s:]+@[^<>\s:]+):(?:[ \t]|$)",
    re.IGNORECASE | re.MULTILINE,
)
# VERP (variable envelope return path): a sender that sends each mail with the envelope
# sender local+<mail id>@domain gets its bounces at that address, whatever the bounce says.
# The look-behind starts a match only at the start of an address: linear time on any header.
VERP = re.compile(
    r"(?<![^\s<>\",;:])[^\s<>@\"+,;:]+\+([A-Za-z0-9][A-Za-z0-9._=-]{0,127})@[A-Za-z0-9.-]+"
)
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
MAX_VERP_TOKENS = 10
_TEXT_SAMPLE = 256 * 1024
_MAX_DIAGNOSTIC = 500


def bounce_info(msg: Message, body: Body, sender: str, subject: str) -> BounceInfo | None:
    """What the mail reports as a bounce, or None when it is not one."""
    text = "\n".join(body.text)[:_TEXT_SAMPLE]
    report_type = str(msg.get_param("report-type") or "").lower()
    if msg.get_content_type() == "multipart/report" and report_type == "delivery-status":
        found = _dsn(body) or _heuristic(msg, body, text, certain=True)
    else:
        # A delivery-status part without a recipient block (some MTAs send only the
        # per-message fields) says no more than the text around it.
        found = _dsn(body) if body.reports else None
        if found is None:
            daemon = bool(_DAEMON.search(sender))
            bouncy = bool(_BOUNCE_SUBJECT.search(subject)) and not _FORWARDED.match(subject)
            if not (daemon or bouncy):
                return None
            found = _heuristic(msg, body, text, certain=daemon and bouncy, daemon=daemon)
    if found is not None:
        found.verp_tokens = _verp_tokens(msg, body)
    return found


def _verp_tokens(msg: Message, body: Body) -> list[str]:
    """Tokens of the VERP addresses the bounce went to, most specific header first."""
    values = [str(v) for name in _ENVELOPE_HEADERS for v in msg.get_all(name, [])]
    values += [str(original.get("Return-Path", "")) for original in body.originals]
    tokens = (m.group(1) for v in values for m in VERP.finditer(unescape_8bit(v, "", [])))
    return list(dict.fromkeys(tokens))[:MAX_VERP_TOKENS]


def _dsn(body: Body) -> BounceInfo | None:
    # Per-recipient blocks are the ones after the per-message block; they name a recipient.
    blocks = [b for report in body.reports for b in field_blocks(report)]
    recipients = [b for b in blocks if field(b, "Final-Recipient") or field(b, "Action")]
    if not recipients:
        return None
    chosen = next((b for b in recipients if field(b, "Action").lower() == "failed"), recipients[0])
    diagnostic = _typed_value(field(chosen, "Diagnostic-Code"))[:_MAX_DIAGNOSTIC]
    found = _STATUS_FIELD.search(field(chosen, "Status"))
    codes = [found.group(1)] if found else []
    reply = _smtp_reply(diagnostic)
    return BounceInfo(
        recipient=_recipient(chosen),
        status=_most_specific(codes + _reply_codes(diagnostic)),
        action=field(chosen, "Action").lower() or None,
        original_message_id=original_id(body, ""),
        diagnostic=diagnostic or None,
        smtp_reply=reply,
    )


def _recipient(block: Message) -> str | None:
    """The address our mail was sent to: Original-Recipient (RFC 3464 2.3.1, the address as
    the sender gave it) when it is an Internet address, else Final-Recipient (after aliases
    and gateways: "user@mailbox-host", an X.400 name)."""
    original = field(block, "Original-Recipient")
    if original.lower().startswith("rfc822;") and "@" in original:
        return _address(original)
    return _address(field(block, "Final-Recipient") or original)


def _reply_codes(text: str) -> list[str]:
    """Enhanced status codes (RFC 3463) that stand in an SMTP reply or a Status: field."""
    return [m.group(1) or m.group(2) for m in _ENHANCED.finditer(text)]


def _most_specific(codes: list[str]) -> str | None:
    """The code that says most: 5.1.1 over a generic 5.0.0; the first among equals."""
    if not codes:
        return None
    return max(codes, key=lambda code: sum(part != "0" for part in code.split(".")[1:]))


def _smtp_reply(text: str) -> str | None:
    # The reply that carries an enhanced code says more than the first numeric line.
    replies = [" ".join(m.group(0).split()) for m in _SMTP_REPLY.finditer(text)]
    best = next((r for r in replies if _ENHANCED.search(r)), replies[0] if replies else None)
    return _unbracketed(best)[:_MAX_DIAGNOSTIC] if best else None


def _unbracketed(text: str) -> str:
    for opening, closing in ("()", "<>"):
        # Quoted in brackets: "(reason: 550 ...)", "<mx #5.1.1 smtp;550 ...>".
        if text.endswith(closing) and text.count(closing) > text.count(opening):
            text = text[:-1]
    return text


def field_blocks(report: Message) -> list[Message]:
    payload = report.get_payload()
    if isinstance(payload, list):
        return [b for b in payload if isinstance(b, Message)]
    # Encoded (base64) reports reach us as one string: split the field blocks ourselves.
    data = report.get_payload(decode=True)
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(payload)
    parser = HeaderParser(policy=RAW_POLICY)
    return [parser.parsestr(block.strip() + "\n") for block in _BLANK_LINE.split(text)]


def field(block: Message, name: str) -> str:
    return " ".join(unescape_8bit(str(block.get(name, "")), name, []).split())


def _typed_value(value: str) -> str:
    # "rfc822; user@example.org", "smtp; 550 5.1.1 ..." → the part after the type.
    return value.split(";", 1)[1].strip() if ";" in value else value.strip()


def _address(value: str) -> str | None:
    return _typed_value(value).strip("<>").strip() or None


def _heuristic(
    msg: Message, body: Body, text: str, *, certain: bool, daemon: bool = True
) -> BounceInfo | None:
    # A daemon's address list is evidence; a mail from another sender with a bounce-like
    # subject (a virus scanner's, a gateway's) counts when flufl.bounce recognises its wording
    # or it quotes the returned mail's headers.
    original = original_id(body, text)
    recipient, temporary = _flufl_recipient(msg, body)
    if recipient is None and (daemon or original):
        # Our looser patterns need a daemon's mail or the returned mail's headers beside them.
        recipient = _text_recipient(text)
    if not (certain or recipient or original):
        return None
    status = _most_specific(_reply_codes(text))
    reply = _smtp_reply(text)
    # A delay: flufl.bounce's warning detectors say so, or a temporary status from a server
    # that has not given up yet (qmail quotes its last "#4.4.1" when it gives up).
    delayed = temporary or bool(status and status.startswith("4") and not _GAVE_UP.search(text))
    return BounceInfo(
        recipient=recipient,
        status=status,
        action="delayed" if delayed else "failed",
        original_message_id=original,
        diagnostic=reply or _reason(text),
        smtp_reply=reply,
    )


def _reason(text: str) -> str | None:
    found = _REASON.search(text)
    reason = next((g for g in found.groups() if g), "") if found else ""
    return _unbracketed(" ".join(reason.split()))[:_MAX_DIAGNOSTIC] or None


def _text_recipient(text: str) -> str | None:
    found = _FAILED_ADDRESS.search(text)
    return next(g for g in found.groups() if g) if found else None


def _flufl_recipient(msg: Message, body: Body) -> tuple[str | None, bool]:
    """The failed recipient flufl.bounce finds, and whether it reports only a delay."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception as exc:  # a detector tripping over odd input must not lose the mail
        body.defects.append(f"bounce detection: {type(exc).__name__}")
        return None, False
    found = sorted(permanent) or sorted(temporary)
    address = found[0].decode("utf-8", errors="replace") if found else None
    return address, not permanent and bool(temporary)


def original_id(body: Body, text: str) -> str | None:
    for original in body.originals:
        found = MESSAGE_ID.search(unescape_8bit(str(original.get("Message-ID", "")), "", []))
        if found:
            return found.group(0)
    quoted = _QUOTED_ID.search(text)
    return quoted.group(1) if quoted else None
