"""``mailroom demo …``: try the pipeline on the local servers ``make run`` starts.

``send`` delivers a mail to the local mailbox through Dovecot's LMTP socket (the path a real
MTA takes, so the fetcher sees it as any other new mail); ``sent`` lists what the local SMTP
sink received, i.e. what Mailroom sent. Both read where the servers are from the variables
``make run`` writes to ``.local/env`` (``DOVECOT_LMTP_SOCKET``, ``LOCAL_MAILBOX``,
``SINK_MAILDIR``): they work against the local servers only, never a real mailbox.
"""

from __future__ import annotations

import datetime as dt
import os
import smtplib
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import formatdate, getaddresses, make_msgid
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from services.config.cli.common import JsonOpt, print_rows

app = typer.Typer(
    help="Try Mailroom on the local servers `make run` starts (load .local/env first).",
    no_args_is_help=True,
)

DEFAULT_FROM = "Demo Customer <customer@example.org>"
DEFAULT_SUBJECT = "Hello from mailroom demo send"
DEFAULT_BODY = "Hello,\n\nthis mail was delivered by `mailroom demo send`.\n"
HINT = "run `make run`, then load its settings with `. .local/env`"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise _fail(f"{name} is not set (no local servers known) — {HINT}")
    return value


def _compose(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = make_msgid(domain="demo.example.org")
    mail.set_content(body)
    return mail


@app.command("send")
def send(
    file: Annotated[
        Path | None,
        typer.Argument(exists=True, dir_okay=False, help="Deliver this .eml as it is."),
    ] = None,
    sender: Annotated[str | None, typer.Option("--from", help="From of the new mail.")] = None,
    subject: Annotated[str | None, typer.Option(help="Subject of the new mail.")] = None,
    body: Annotated[str | None, typer.Option(help="Text of the new mail.")] = None,
    to: Annotated[
        str | None, typer.Option(help="Recipient; default: the local mailbox ($LOCAL_MAILBOX).")
    ] = None,
) -> None:
    """Deliver a mail to the local mailbox: a new one (--from, --subject, --body) or FILE."""
    if file is not None and (sender or subject or body):
        raise _fail("give either FILE or --from/--subject/--body, not both")
    socket_path = _env("DOVECOT_LMTP_SOCKET")
    recipient = to or _env("LOCAL_MAILBOX")
    if file is not None:
        raw = file.read_bytes()
        headers = BytesParser(policy=default_policy).parsebytes(raw, headersonly=True)
        envelope_from = (getaddresses([str(headers.get("From", ""))]) or [("", "")])[0][1]
        message_id, shown_subject = headers.get("Message-ID"), headers.get("Subject")
    else:
        mail = _compose(sender or DEFAULT_FROM, recipient, subject or DEFAULT_SUBJECT, body or "")
        if not body:
            mail.set_content(DEFAULT_BODY)
        raw = mail.as_bytes()
        envelope_from = getaddresses([str(mail["From"])])[0][1]
        message_id, shown_subject = mail["Message-ID"], mail["Subject"]
    try:
        with smtplib.LMTP(socket_path, timeout=30) as lmtp:
            lmtp.sendmail(envelope_from or "demo@example.org", [recipient], raw)
    except (OSError, smtplib.SMTPException) as exc:
        raise _fail(
            f"cannot deliver to the local Dovecot ({socket_path}: {exc}) — is `make run` running?"
        ) from None
    typer.echo(f"delivered {message_id} to {recipient}: {shown_subject}")


class SinkMail(BaseModel):
    """One mail the local SMTP sink received."""

    received: str
    to: str
    subject: str
    sender: str
    message_id: str
    text: str


def _read(path: Path) -> SinkMail:
    mail = BytesParser(_class=EmailMessage, policy=default_policy).parsebytes(path.read_bytes())
    # The sink names its files <arrival time in ns>.<counter>…: they sort in arrival order.
    stamp = dt.datetime.fromtimestamp(int(path.name.split(".")[0]) / 1e9, dt.UTC)
    part = mail.get_body(("plain",))
    return SinkMail(
        received=stamp.isoformat(timespec="seconds"),
        to=str(mail.get("X-Sink-Rcpt-To", "")),
        subject=str(mail.get("Subject", "")),
        sender=str(mail.get("From", "")),
        message_id=str(mail.get("Message-ID", "")),
        text=part.get_content() if isinstance(part, EmailMessage) else "",
    )


@app.command("sent")
def sent(
    last: Annotated[int, typer.Option(min=1, help="Show the last N mails.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Mail the local SMTP sink received (what Mailroom sent), oldest first."""
    maildir = Path(_env("SINK_MAILDIR"))
    files = sorted(
        (
            p
            for sub in ("new", "cur")
            if (maildir / sub).is_dir()
            for p in (maildir / sub).iterdir()
        ),
        key=lambda p: p.name,
    )
    rows = [_read(p) for p in files[-last:]]
    print_rows(rows, ("received", "to", "subject"), as_json, f"Sent mail (SMTP sink {maildir})")
